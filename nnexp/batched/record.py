"""Record a job the batched launcher trained ahead: the job dir Hydra's ``run_job`` would make.

For a job whose result is already trained, ``run_job``'s own work dominates: two config deep
copies, two more inside ``HydraConfig.set_config``, a logging setup and three YAML files through
OmegaConf's pure-Python writer, about 35 ms a job against a few ms to record the result. This
makes the same output dir, ``.hydra/{config,hydra,overrides}.yaml`` (same content, written by
libyaml when PyYAML has it), callbacks and task, with no copies: ``HydraConfig`` is pointed
at the job's own hydra node (``use_hydra_config``).
The job's Hydra log file is not written (a recorded job logs nothing).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf, flag_override, open_dict, read_write

from nnexp.results import write_text_atomic, yaml_text


def record_job(config: DictConfig, task: DictConfig, hydra_context: HydraContext,
               task_function: Callable[[DictConfig], Any], body: Callable[[DictConfig, DictConfig], Any]) -> JobReturn:
    """Make job ``config``'s dir as ``run_job`` would, and run ``body(task, config.hydra)`` for
    it where run_job would call ``task_function``; ``task`` is ``config`` without its hydra node
    (a copy, which the body may change)."""
    output_dir = Path(str(OmegaConf.select(config, "hydra.sweep.dir"))) / str(OmegaConf.select(config, "hydra.sweep.subdir"))
    with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
        config.hydra.runtime.output_dir = os.path.abspath(output_dir)
    use_hydra_config(config)  # ${hydra:...} in the task resolves to this job
    saved = OmegaConf.to_container(config, enum_to_str=True)  # unresolved, as run_job saves it (to_yaml)
    hydra_node = saved.pop("hydra")
    output_dir.mkdir(parents=True, exist_ok=True)
    if config.hydra.output_subdir is not None:
        folder = output_dir / str(config.hydra.output_subdir)
        write_text_atomic(folder / "config.yaml", yaml_text(saved))
        write_text_atomic(folder / "hydra.yaml", yaml_text({"hydra": hydra_node}))
        write_text_atomic(folder / "overrides.yaml", yaml_text(hydra_node["overrides"]["task"]))
    ret = JobReturn(overrides=list(hydra_node["overrides"]["task"]), cfg=task, hydra_cfg=config, working_dir=os.getcwd())
    hydra_context.callbacks.on_job_start(config=config, task_function=task_function)
    try:
        ret.return_value = body(task, config.hydra)
        ret.status = JobStatus.COMPLETED
    except Exception as error:  # as run_job: the sweeper sees the failure, the sweep goes on
        ret.return_value, ret.status = error, JobStatus.FAILED
    ret.task_name = str(config.hydra.job.name)
    hydra_context.callbacks.on_job_end(config=config, job_return=ret)
    return ret


def use_hydra_config(config: DictConfig) -> None:
    """``HydraConfig.instance().set_config(config)`` without its deep copy of the hydra node
    (3 ms a job): the singleton holds the job's own node, read-only and, as in Hydra's copy,
    parented to the job config, so interpolations inside it resolve the same way."""
    OmegaConf.set_readonly(config.hydra, True)
    holder = OmegaConf.create({})
    with flag_override(holder, "no_deepcopy_set_nodes", True):
        holder.hydra = config.hydra
    holder.hydra._set_parent(config)
    HydraConfig.instance().cfg = holder
