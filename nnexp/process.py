"""Process-wide set-up, done once by an entry point (the CLI, a launcher, a benchmark script),
never inside a run: a library call must not change its caller's logging, allocator or collector."""

from __future__ import annotations

import functools
import logging
import os
import warnings

from nnexp.training.hardware import freeze_imports, tune_malloc


@functools.cache  # once: each filterwarnings call resets which warnings Python has shown once
def quiet_lightning() -> None:
    """Silence Lightning's start-up chatter; nnexp prints its own summary. Lightning's hint that
    ``srun`` is installed but unused is silenced too, outside a SLURM job (inside one it matters)."""
    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*(does not have many workers|treespec|GPU available|TPU available).*")
    if not os.environ.get("SLURM_JOB_ID"):
        warnings.filterwarnings("ignore", message=".*`srun` command is available on your system.*")


def set_up_process() -> None:
    """Quiet Lightning, have it list its callback entry points once (``compat``), tune the
    allocator, and freeze the imports out of the garbage collector's reach (each once per process;
    see ``tune_malloc`` and ``freeze_imports``). The runner (torch, Lightning, scikit-learn) is
    imported first: objects imported after the freeze are walked by every full collection
    (measured: a sequential Adam sweep took 1.35x as long)."""
    import nnexp.runner  # noqa: F401  (imported for its imports)
    from nnexp.compat import scan_lightning_callbacks_once

    quiet_lightning()
    scan_lightning_callbacks_once()
    tune_malloc()
    freeze_imports()
