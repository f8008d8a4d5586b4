"""Retrain a sweep's best config on the whole training split and score it on the test split."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf, open_dict
from rich.console import Console

from nnexp.interrupts import raise_if_interrupted
from nnexp.metrics import RunRecord
from nnexp.results import HYDRA_CONFIG_FILE


def refit_job(job_dir: Path, output_dir: Path):
    """The refit's ``Job``: the job's composed config again, with ``cv=1``, into ``output_dir``.
    A refit of this config finished there already is its result (``done``: a relaunched sweep
    refits nothing); a refit of another config there (an earlier best) is replaced."""
    from nnexp.job import REPLACE, Job

    cfg = OmegaConf.load(Path(job_dir) / HYDRA_CONFIG_FILE)
    with open_dict(cfg):
        cfg.cv = 1
        cfg.quiet = True
        cfg.mode = "train"
        cfg.paths.output_dir = str(output_dir)
        cfg.trial = None  # an Optuna job's link to its trial: the refit is no trial, and is never pruned
    return Job.single(cfg, Console(quiet=True), finished=REPLACE, plots_in_background=True)


def refit_best(job_dir: Path, output_dir: Path, batched: bool = False) -> RunRecord:
    """Retrain the job's config with ``cv=1`` into ``output_dir`` (unless it is there already);
    return its record. Its figures (curves, confusion matrix ...) are drawn by a detached
    process, as for a CLI run. ``batched``: train it with the batched sweep's trainer (as its
    jobs were), when it can be."""
    raise_if_interrupted()  # a Ctrl-C swallowed during the last job: no refit
    job = refit_job(job_dir, output_dir)
    if (finished := job.done()) is not None:
        return finished
    trained = []
    if batched:
        from nnexp.batched.launch import BatchedSweep

        trained = [result for finished in BatchedSweep([job.cfg], chunk_size=1).train()
                   for _, result in finished]
    # The stacks may not take this config: then the job trains it.
    return job.run(trained[0] if trained else None)
