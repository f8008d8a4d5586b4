"""Process-wide set-up, done once by an entry point (the CLI, a launcher, a benchmark script),
never inside a run: a library call must not change its caller's logging, allocator or collector."""

from __future__ import annotations

from nnexp.training.hardware import freeze_imports, tune_malloc
from nnexp.training.quiet import quiet_lightning


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
