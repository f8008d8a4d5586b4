"""Retrain a sweep's best config on the whole training split and score it on the test split."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf, open_dict
from rich.console import Console

from nnexp.interrupts import raise_if_interrupted
from nnexp.metrics import RunRecord


def refit_best(job_dir: Path, output_dir: Path, batched: bool = False) -> RunRecord:
    """Run the job's composed config again with ``cv=1`` into ``output_dir``; return its record.
    Its figures (curves, confusion matrix ...) are drawn by a detached process, as for a CLI run.
    ``batched``: train it with the batched sweep's trainer (as its jobs were), when it can be."""
    from nnexp.job import Job

    raise_if_interrupted()  # a Ctrl-C swallowed during the last job: no refit
    cfg = OmegaConf.load(Path(job_dir) / ".hydra" / "config.yaml")
    with open_dict(cfg):
        cfg.cv = 1
        cfg.quiet = True
        cfg.mode = "train"
        cfg.paths.output_dir = str(output_dir)
        cfg.trial = None  # an Optuna job's link to its trial: the refit is no trial, and is never pruned
    trained = []
    if batched:
        from nnexp.batched.launch import BatchedSweep

        trained = [result for finished in BatchedSweep([cfg], chunk_size=1, skip_finished=False).train()
                   for _, result in finished]
    # The stacks may not take this config: then the job trains it.
    return Job.single(cfg, Console(quiet=True), plots_in_background=True).run(trained[0] if trained else None)
