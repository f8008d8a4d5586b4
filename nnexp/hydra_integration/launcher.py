"""The in-process launcher: jobs run one after another in this process, each composed through a cache."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any, Callable, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus, configure_log, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from nnexp.claims import DirBusy
from nnexp.hydra_integration.job_record import RecordedReturn, hydra_job
from nnexp.hydra_integration.overrides import apply_value_overrides, override_dirname, shown_overrides
from nnexp.hydra_integration.sweep_job import job_dir, report, sweep_job, task_config
from nnexp.job import Job

log = logging.getLogger(__name__)


class InProcessLauncher(Launcher):
    """Jobs run one after another in this process, as Hydra's basic launcher runs them, with a
    composition cache.

    Hydra recomposes the whole config tree for every job (about 70-170 ms here). Most sweep jobs
    differ only in plain values (``regularization.alpha=0.1``), so this launcher composes once per
    distinct set of structural overrides (config-group choices, ``+``/``~`` edits, hydra keys)
    and applies the value overrides to a copy. The job config, ``hydra.overrides.task`` and
    ``hydra.job.override_dirname`` come out as Hydra makes them.

    The sweep's own config already is that composition for the command line's structural
    overrides: Hydra composed it from them, skipped the swept values and applied the fixed ones,
    which every job sets again. Jobs with those overrides start from a copy of it.
    """

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        self.hydra_context = hydra_context
        self.task_function = task_function
        self.config = config
        self._compositions: dict[tuple[str, ...], bytes] = {}  # pickled configs
        self._prepared: dict[tuple[str, ...], DictConfig] = {}
        self._parser = OverridesParser.create()
        self._parsed: dict[str, object] = {}  # override line -> Override: jobs repeat most lines
        # Every config group in the defaults tree has a choice recorded here (``???`` when unset);
        # a group outside it can only be added (``+group=x``), which is structural anyway.
        self._groups = set(config.hydra.runtime.choices)

    def _parse(self, lines: Sequence[str]) -> list:
        """Hydra's parse of each line (its grammar parser takes ~0.2 ms a line), once per distinct line."""
        missing = [line for line in dict.fromkeys(lines) if line not in self._parsed]
        if missing:
            self._parsed.update(zip(missing, self._parser.parse_overrides(missing)))
        return [self._parsed[line] for line in lines]

    def _is_structural(self, override) -> bool:
        return (
            override.is_hydra_override()
            or override.is_add()
            or override.is_force_add()
            or override.is_delete()
            or override.package is not None
            or override.key_or_group in self._groups
        )

    @staticmethod
    def _normalised(override) -> str:
        """``key=value`` as sweepers write it, whatever the command line's spelling."""
        return f"{override.get_key_element()}={override.get_value_element_as_str()}"

    def _sweep_overrides(self) -> list:
        return self._parse(list(self.config.hydra.overrides.task))

    def _sweep_structure(self) -> tuple[str, ...] | None:
        """The sweep config's structural overrides, or None when a job's composition can differ
        from it in more than values: a swept config group, or a group left unchosen (``???``),
        which Hydra skips in a multirun's own composition but not in a job's."""
        choices = self.config.hydra.runtime.choices
        if any(OmegaConf.is_missing(choices, group) for group in choices):
            return None
        overrides = [o for o in self._sweep_overrides() if self._is_structural(o)]
        if any(o.is_sweep_override() for o in overrides):
            return None
        return tuple(map(self._normalised, overrides))

    def _sweep_values(self) -> set[str]:
        """Keys of the sweep config's fixed value overrides: a job starting from it must set each again."""
        return {o.get_key_element() for o in self._sweep_overrides() if not self._is_structural(o) and not o.is_sweep_override()}

    def prepare(self, overrides: list[str]) -> DictConfig:
        """Build (and so validate) a job's config ahead of its launch."""
        if tuple(overrides) not in self._prepared:
            self._prepared[tuple(overrides)] = self.job_config(overrides)
        return self._prepared[tuple(overrides)]

    def job_config(self, overrides: list[str]) -> DictConfig:
        """The config Hydra's ``load_sweep_config`` would build for these job overrides."""
        if tuple(overrides) in self._prepared:
            return self._prepared.pop(tuple(overrides))
        parsed = self._parse(overrides)
        structural, values = [], []
        for override in parsed:
            (structural if self._is_structural(override) else values).append(override)
        key = tuple(map(self._normalised, structural))
        if key not in self._compositions:
            if key == self._sweep_structure() and self._sweep_values() <= {o.get_key_element() for o in values}:
                composed = self.config
            else:
                composed = self.hydra_context.config_loader.load_sweep_config(self.config, [o.input_line for o in structural])
            self._compositions[key] = pickle.dumps(composed)
        config = pickle.loads(self._compositions[key])  # a fresh copy, ~4x faster than deepcopy
        apply_value_overrides(values, config)
        app_overrides = [o for o in parsed if not o.is_hydra_override()]
        with read_write(config.hydra), open_dict(config.hydra):  # Hydra 1.4 composes it read-only
            config.hydra.overrides.task = [o.input_line for o in app_overrides]
            if not OmegaConf.is_interpolation(config.hydra.job, "override_dirname"):  # Hydra 1.4 resolves it from the task overrides
                settings = config.hydra.job.config.override_dirname
                config.hydra.job.override_dirname = override_dirname(
                    app_overrides, kv_sep=settings.kv_sep, item_sep=settings.item_sep, exclude_keys=settings.exclude_keys
                )
        OmegaConf.copy_cache(from_config=self.config, to_config=config)
        return config

    def start(self) -> None:
        """What Hydra's launchers do before the first job."""
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)

    @staticmethod
    def number(config: DictConfig, idx: int) -> DictConfig:
        """Give a job config its number (``hydra.job.id`` and ``num``)."""
        with read_write(config.hydra), open_dict(config):
            config.hydra.job.id = str(idx)  # a str field: OmegaConf 2.4 deprecates assigning it an int
            config.hydra.job.num = idx
        return config

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        self.start()
        log.info(f"Launching {len(job_overrides)} jobs in-process")
        return [self.run_one(self.job_config(list(overrides)), idx) for idx, overrides in enumerate(job_overrides, start=initial_job_idx)]

    def run_one(self, config: DictConfig, idx: int, task: DictConfig | None = None, key: str | None = None,
                result=None, checked=None) -> JobReturn:
        """Run job ``idx`` of ``config``: an nnexp training job through its ``Job`` (``key``: its
        identity, ``result``: a result trained ahead, e.g. by a stack), another app's job through
        the sweep's task function. Its dir is made as Hydra's run_job makes it (``hydra_job``,
        without run_job's copies of a config that is this job's own), or by run_job itself for a
        job that changes its working dir or environment. ``task``: the config without its hydra
        node, ``checked``: what the light checks found, when the caller made them already."""
        from nnexp.config import is_training_config

        config = self.number(config, idx)
        log.info(f"\t#{idx} : {' '.join(shown_overrides(config.hydra.overrides.task))}")
        task = task if task is not None else task_config(config)
        if not is_training_config(task):  # another app's task function (Hydra's launcher test suites)
            return self.hydra_job(config, task, self.task_function)
        from nnexp.process import set_up_process

        set_up_process()  # once per process: without its collector freeze a sequential sweep runs 1.1-1.35x as long
        job = sweep_job(task, config.hydra, job_dir(config), key, checked)
        try:
            with job.claimed():  # before anything is written into its dir
                ran = self.run_job(job, config, result)
        except DirBusy as busy:  # another process runs it (a task an earlier launch left running)
            job.say(f"not run: {busy}")
            ran = RecordedReturn(overrides=list(config.hydra.overrides.task), cfg=task, hydra_cfg=config,
                                 status=JobStatus.COMPLETED, task_name=str(config.hydra.job.name))
            ran.return_value = float("nan")
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return ran

    def run_job(self, job: Job, config: DictConfig, result=None) -> RecordedReturn:
        """``job.run(result)`` where Hydra's run_job would call the task function: the record
        stays in memory, in the return."""
        if config.hydra.job.chdir is False and not config.hydra.job.env_set:  # None: Hydra decides (chdir before 1.2)
            with hydra_job(config, job.cfg, self.hydra_context, self.task_function, job_logging=result is None) as ran:
                ran.record = job.run(result)
                ran.return_value = report(job, ran.record)
                ran.restored = job.restored
            return ran
        records = []  # run_job calls a task function of the config alone

        def task_function(_: DictConfig) -> float:
            records.append(job.run(result))
            return report(job, records[-1])

        ran = RecordedReturn(**vars(run_job(hydra_context=self.hydra_context, task_function=task_function, config=config,
                                            job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")))
        ran.record, ran.restored = (records[-1] if records else None), job.restored
        return ran

    def hydra_job(self, config: DictConfig, task: DictConfig, task_function: Callable[[DictConfig], Any]) -> JobReturn:
        """Another app's job: its task function as Hydra's run_job runs it, in the job's own dir."""
        if config.hydra.job.chdir is False and not config.hydra.job.env_set:
            with hydra_job(config, task, self.hydra_context, task_function, job_logging=True) as ran:
                ran.return_value = task_function(task)
        else:
            ran = run_job(hydra_context=self.hydra_context, task_function=task_function, config=config,
                          job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return ran
