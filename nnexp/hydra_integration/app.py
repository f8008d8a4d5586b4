"""The ``hydra.main`` application: nnexp's task function over its packaged configs."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Callable

from omegaconf import DictConfig, OmegaConf

CONFIG_PACKAGE = "nnexp.configs"
DEFAULT_RUN_DIR = "outputs/${task_name}/${now:%Y-%m-%d}/${now:%H-%M-%S}"  # hydra.run.dir in configs/hydra/default.yaml


def train_task(cfg: DictConfig) -> float:
    """Hydra's task function for the command line: one run, or one job of a multirun. A user's
    error in a run is one line on stderr and its exit code (``NNEXP_TRACEBACK=1``: raised)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from nnexp.errors import NnexpError, unwritable_path

    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN:  # a job of another launcher (Hydra's basic, joblib)
        from nnexp.hydra_integration.sweep_job import report, sweep_job
        from nnexp.process import set_up_process

        set_up_process()
        job = sweep_job(cfg, hydra_cfg, Path(hydra_cfg.runtime.output_dir))
        return report(job, job.run())
    try:
        objective = train_run(cfg)
    except NnexpError as error:
        discard_untouched_run_dir(hydra_cfg)  # a mistake leaves no run dir behind
        if os.environ.get("NNEXP_TRACEBACK"):
            raise
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(error.exit_code) from None
    except OSError as error:  # a read-only or full disk: nothing is half-written (files are replaced whole)
        if os.environ.get("NNEXP_TRACEBACK") or error.filename is None:
            raise
        print(f"error: {unwritable_path(error)}", file=sys.stderr)
        raise SystemExit(1) from None
    if cfg.mode == "train" and math.isnan(objective):
        raise SystemExit(1)  # diverged: metrics.json holds status "diverged"
    return objective


def train_run(cfg: DictConfig) -> float:
    """One run of ``cfg`` in Hydra's run mode and its objective (NaN: diverged, and recorded so);
    a user's error is raised (``NnexpError``, ``OSError``). The Python API's task function."""
    from hydra.core.hydra_config import HydraConfig

    from nnexp.checks import check_run
    from nnexp.job_log import JobLog

    checked = check_run(cfg)  # before torch and Lightning are imported (seconds): a mistake costs no start-up
    from nnexp.job import KEEP, Job, objective_of
    from nnexp.process import set_up_process

    set_up_process()
    job = Job.single(cfg, finished=KEEP, plots_in_background=True, checked=checked, log=JobLog(HydraConfig.get()))
    return objective_of(job.run())


def discard_untouched_run_dir(hydra_cfg: DictConfig) -> None:
    """Remove the dir of a refused run (a user's mistake), when it holds only what was made before
    training (Hydra's ``.hydra`` files, its empty log file, the run's claim, and the config,
    provenance and layer table the run's preparation writes), and in nnexp's default layout the
    empty folders above it inside the working dir (outputs/<task_name>/<date>): a mistake leaves no
    run dir behind. A dir with anything else in it (a history, a model, scores), the working dir
    itself, and the folders above a run dir the user chose, are kept."""
    from nnexp.claims import CLAIM_FILE
    from nnexp.job_log import file_handler
    from nnexp.results import CONFIG_FILE, HYDRA_FILES, MODEL_SUMMARY_FILE, PROVENANCE_FILE

    run_dir, subdir = Path(str(hydra_cfg.runtime.output_dir)), hydra_cfg.output_subdir
    handler = file_handler(hydra_cfg)  # the job's log file, as its job logging names it (none when disabled)
    logs = [handler[0]] if handler is not None else []
    folders = [run_dir / str(subdir)] if subdir is not None else []
    made = [run_dir / name for name in (CLAIM_FILE, CONFIG_FILE, PROVENANCE_FILE, MODEL_SUMMARY_FILE)] + logs
    made += [folder / name for folder in folders for name in HYDRA_FILES]
    cwd = Path.cwd().resolve()
    try:
        if run_dir.resolve() == cwd or any(log.is_file() and log.stat().st_size for log in logs) or any(
                path not in {*made, *folders} for folder in [run_dir, *folders] for path in folder.iterdir()):
            return
        for path in made:
            path.unlink(missing_ok=True)
        for folder in [*folders, run_dir]:
            folder.rmdir()
        if OmegaConf.to_container(hydra_cfg.run, resolve=False).get("dir") != DEFAULT_RUN_DIR:
            return  # a run dir the user chose: the folders above it are theirs
        for parent in run_dir.resolve().parents:  # outputs/<task_name>/<date>, made for it: up to the working dir
            if parent == cwd or cwd not in parent.parents or any(parent.iterdir()):
                break
            parent.rmdir()
    except OSError:  # a read-only or vanished dir: left as it is
        pass


def hydra_app() -> Callable[[], None]:
    """``train_task`` as a Hydra application. Built when called, not at import: ``hydra.main``
    sets Hydra's process-wide version base, which importing nnexp must not change."""
    import hydra

    from nnexp.compat import hydra_main_whitelist, hydra_version_base

    return hydra.main(config_path=f"pkg://{CONFIG_PACKAGE}", config_name="train", **hydra_version_base(), **hydra_main_whitelist())(train_task)


def register_plugins() -> None:
    """Register nnexp's launchers and sweeper with Hydra. Hydra finds plugins by scanning the
    ``hydra_plugins`` folders on sys.path, which an editable install does not have."""
    from hydra.core.plugins import Plugins

    # Scan first: the scan re-executes the plugin modules it finds, and the classes registered
    # must be those that exist after it.
    plugins = Plugins.instance()
    from hydra_plugins.nnexp_launcher import BatchedLauncher, ClusterLauncher, InProcessLauncher, InProcessSweeper, OptunaSweeper

    for plugin in (InProcessLauncher, InProcessSweeper, BatchedLauncher, ClusterLauncher, OptunaSweeper):
        plugins.register(plugin)
