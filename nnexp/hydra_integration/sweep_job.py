"""The task body of one sweep job: a one-line report, skip-if-finished, failures recorded."""

from __future__ import annotations

import math

from omegaconf import DictConfig, open_dict


def sweep_job(cfg: DictConfig, hydra_cfg, result=None, key: str | None = None) -> float:
    """Run one job of a multirun quietly (``nnexp.sweeps.jobs.run_job``) and print one line.

    ``result``: the job's ``FitResult``, trained ahead by a batched stack, which is recorded
    instead of training; ``key``: the job's identity, when the caller computed it already.
    """
    from rich.console import Console

    from nnexp.sweeps.jobs import run_job

    from nnexp.hydra_integration.overrides import shown_overrides

    label = f"job {hydra_cfg.job.num}: {' '.join(shown_overrides(hydra_cfg.overrides.task)) or '(defaults)'}"
    with open_dict(cfg):
        cfg.quiet = True  # no config tree, layer table or progress bar per job
        cfg.plots = False  # the sweep root gets the sweep's figures; nnexp-plot draws any job's
    silent = Console(quiet=True)

    def execute(job_cfg: DictConfig, job_key: str) -> float:
        if result is None:
            from nnexp.runner import run

            return run(job_cfg, console=silent, key=job_key)
        from nnexp.plan import prepare
        from nnexp.record import record

        return record(prepare(job_cfg, job_key), result).objective_value

    objective = run_job(cfg, execute, say=lambda text: print(f"{label} -> {text}"), key=key)
    if not math.isnan(objective):
        print(f"{label} -> objective {objective:.4f}")
    return objective
