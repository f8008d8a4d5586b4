"""Retrain a sweep's best config on the whole training split and score it on the test split."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from omegaconf import OmegaConf, open_dict

from nnexp.results import METRICS_FILE, read_json


def refit_best(job_dir: Path, output_dir: Path, batched: bool = False) -> dict:
    """Run the job's composed config again with ``cv=1`` into ``output_dir``; return its metrics.
    Its figures (curves, confusion matrix ...) are drawn by a detached process, as for a CLI run.
    ``batched``: train it with the batched sweep's trainer (as its jobs were), when it can be."""
    from nnexp.runner import run

    cfg = OmegaConf.load(Path(job_dir) / ".hydra" / "config.yaml")
    with open_dict(cfg):
        cfg.cv = 1
        cfg.quiet = True
        cfg.mode = "train"
        cfg.paths.output_dir = str(output_dir)
    if batched:
        from nnexp.batched.launch import BatchedSweep

        for _ in BatchedSweep([cfg], chunk_size=1, skip_finished=False).train():  # registers the result, which run() then records
            pass
    with contextlib.redirect_stdout(io.StringIO()):
        run(cfg, plots_in_background=True)
    return read_json(Path(output_dir) / METRICS_FILE)
