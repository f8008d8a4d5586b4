"""A job dir as Hydra's ``run_job`` makes it, without run_job's copies: for a job whose result was
trained ahead (a stack), and for every in-process job whose working dir and environment stay.

For a job whose result is already trained, ``run_job``'s own work dominates: two config deep
copies, two more inside ``HydraConfig.set_config``, a logging setup and three YAML files through
OmegaConf's pure-Python writer, about 35 ms a job against a few ms to record the result. This
makes the same output dir, ``.hydra/{config,hydra,overrides}.yaml`` (same content, written by
libyaml when PyYAML has it), Hydra's per-job log file, callbacks and task, with no copies:
``HydraConfig`` is pointed at the job's own hydra node (``nnexp.compat.set_hydra_config``).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from hydra.core.utils import JobReturn, JobStatus
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from nnexp.compat import keep_task_traceback, set_hydra_config
from nnexp.durable import job_syncs_together
from nnexp.results import CONFIG_FILE, write_text_atomic, yaml_text


@dataclass
class RecordedReturn(JobReturn):
    """Hydra's ``JobReturn`` with the job's ``RunRecord``, in memory (None for another app's task)."""

    record: Any = None
    restored: bool = False  # the job's result finished earlier: taken, not trained in this launch


@contextmanager
def hydra_job(config: DictConfig, task: DictConfig, hydra_context: HydraContext, task_function: Callable[[DictConfig], Any],
              job_logging: bool = False, run_mode: bool = False) -> Iterator[RecordedReturn]:
    """Make job ``config``'s dir as ``run_job`` would, and yield its return, whose value the block
    sets where run_job would call ``task_function``; an exception in the block fails the job, as
    in run_job. ``task`` is ``config`` without its hydra node (a copy, which the block may change).
    ``job_logging``: configure Hydra's job logging for the block, as run_job does (a job that
    trains logs into its own log file); else the log file is only made. ``config`` must be the
    job's own (the in-process launchers' are fresh copies): nothing is copied, where run_job
    deep-copies it three times (about 70 ms a job here). ``run_mode``: a single run's dir
    (``hydra.run.dir``, as ``Hydra.run`` hands run_job), not a sweep job's. Jobs with
    ``hydra.job.chdir`` or ``hydra.job.env_set`` keep Hydra's run_job."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import configure_log

    previous = HydraConfig.instance().cfg
    try:
        set_hydra_config(config)  # ${hydra:...} resolves to this job, in its dir's name too (as in run_job)
        if run_mode:
            output_dir = Path(str(OmegaConf.select(config, "hydra.run.dir")))
        else:
            output_dir = Path(str(OmegaConf.select(config, "hydra.sweep.dir"))) / str(OmegaConf.select(config, "hydra.sweep.subdir"))
        with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
            config.hydra.runtime.output_dir = os.path.abspath(output_dir)
        set_hydra_config(config)  # again: Hydra's public set_config holds a copy, made before the output dir
        # The job's syncs, its .hydra files' included, are made together before its metrics.json
        # marks it finished, and once more when it ends (durable.job_syncs_together).
        with job_syncs_together():
            saved = OmegaConf.to_container(config, enum_to_str=True)  # unresolved, as run_job saves it (to_yaml)
            hydra_node = saved.pop("hydra")
            output_dir.mkdir(parents=True, exist_ok=True)
            if config.hydra.output_subdir is not None:
                folder = output_dir / str(config.hydra.output_subdir)
                write_text_atomic(folder / CONFIG_FILE, yaml_text(saved))  # Hydra's name, the run dir's too
                write_text_atomic(folder / "hydra.yaml", yaml_text({"hydra": hydra_node}))
                write_text_atomic(folder / "overrides.yaml", yaml_text(hydra_node["overrides"]["task"]))
            if job_logging:
                configure_log(config.hydra.job_logging, config.hydra.verbose)
            elif not run_mode:  # run_job without logging, as Hydra.run calls it here, makes no log file
                log_file = OmegaConf.select(config, "hydra.job_logging.handlers.file.filename", default=None)
                if log_file:  # the file Hydra's job logging opens; a recorded job logs nothing into it
                    Path(str(log_file)).touch()
            ret = RecordedReturn(overrides=list(hydra_node["overrides"]["task"]), cfg=task, hydra_cfg=config, working_dir=os.getcwd())
            hydra_context.callbacks.on_job_start(config=config, task_function=task_function)
            try:
                yield ret
                ret.status = JobStatus.COMPLETED
            except Exception as error:  # as run_job: the sweeper sees the failure, the sweep goes on
                ret.return_value, ret.status = error, JobStatus.FAILED
                keep_task_traceback(ret, error)  # Hydra 1.4 ships it with the return to another process
            ret.task_name = str(config.hydra.job.name)
            hydra_context.callbacks.on_job_end(config=config, job_return=ret)
    finally:
        HydraConfig.instance().cfg = previous  # as run_job leaves it
