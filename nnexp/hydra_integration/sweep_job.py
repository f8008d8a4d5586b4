"""A Hydra sweep job as nnexp's ``Job``: its dir, identity and one-line report."""

from __future__ import annotations

import math
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from nnexp.hydra_integration.overrides import shown_overrides
from nnexp.job import Job
from nnexp.metrics import RunRecord


def task_config(job_config: DictConfig) -> DictConfig:
    """A job's task config: a copy of its config without the hydra node, as Hydra hands it to the
    task. Planning never resolves its volatile keys (the run dir is not made yet)."""
    return OmegaConf.masked_copy(job_config, [key for key in job_config if key != "hydra"])


def job_dir(config: DictConfig) -> Path:
    """A numbered job config's dir: ``hydra.sweep.dir/hydra.sweep.subdir``, as Hydra makes it."""
    return Path(str(OmegaConf.select(config, "hydra.sweep.dir"))) / str(OmegaConf.select(config, "hydra.sweep.subdir"))


def label(hydra_cfg: DictConfig) -> str:
    """The job's name in the sweep's log: ``job N: overrides``."""
    return f"job {hydra_cfg.job.num}: {' '.join(shown_overrides(hydra_cfg.overrides.task)) or '(defaults)'}"


def sweep_job(task: DictConfig, hydra_cfg: DictConfig, dir: Path, key: str | None = None, checked=None) -> Job:
    """The ``Job`` of a sweep's job: ``task`` (its own copy, without the hydra node), its
    hydra node (the number and overrides its report line names), its dir and identity, and what
    the light checks found when the launcher ran them (``nnexp.checks``)."""
    from nnexp.job_log import JobLog

    name = label(hydra_cfg)
    return Job.in_sweep(task, dir, key, say=lambda text: print(f"{name} -> {text}"), checked=checked, log=JobLog(hydra_cfg))


def report(job: Job, record: RunRecord | None) -> float:
    """The job's closing line and its objective for the sweeper (NaN when it has none)."""
    if record is None or record.objective is None or record.status == "pruned":  # a pruned job is no finished result
        return float("nan")
    objective = float(record.objective)
    if not math.isnan(objective) and not job.restored:  # a restored job's line gave its objective
        job.tell(f"objective {objective:.4f}")
    return objective
