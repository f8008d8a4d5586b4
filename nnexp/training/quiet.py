"""Lightning's start-up chatter silenced, once per process: by the entry point (``nnexp.process``)
and by each process Lightning spawns (``nnexp.training.distributed``), which never runs one."""

from __future__ import annotations

import functools
import logging
import os
import warnings


@functools.cache  # once: each filterwarnings call resets which warnings Python has shown once
def quiet_lightning() -> None:
    """Silence Lightning's start-up chatter; nnexp prints its own summary. Lightning's hint that
    ``srun`` is installed but unused is silenced too, outside a SLURM job (inside one it matters)."""
    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*(does not have many workers|treespec|GPU available|TPU available).*")
    if not os.environ.get("SLURM_JOB_ID"):
        warnings.filterwarnings("ignore", message=".*`srun` command is available on your system.*")
