"""Process-wide set-up, done once by an entry point (the CLI, a launcher, a benchmark script),
never inside a run: a library call must not change its caller's logging, allocator or collector."""

from __future__ import annotations

import logging
import warnings

from nnexp.training.hardware import freeze_imports, tune_malloc


def quiet_lightning() -> None:
    """Silence Lightning's start-up chatter; nnexp prints its own summary."""
    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*(does not have many workers|treespec|GPU available|TPU available).*")


def set_up_process() -> None:
    """Quiet Lightning, tune the allocator, and freeze the imports out of the garbage collector's
    reach (each once per process; see ``tune_malloc`` and ``freeze_imports``)."""
    quiet_lightning()
    tune_malloc()
    freeze_imports()
