"""nnexp's Optuna sweeper: a thin adapter over Optuna's ask-and-tell interface on Hydra's public
``Sweeper``. Optuna samples, prunes and stores; this asks for trials, launches them as Hydra jobs
through the configured launcher, and tells Optuna how each ended."""

from __future__ import annotations

import logging
import os
import socket
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from nnexp.claims import Claim
from nnexp.errors import ConfigError
from nnexp.results import STUDY_FILE, write_json
from nnexp.studies.search_space import SearchSpace, data_identity, refuse_other_data, search_space
from nnexp.studies.storage import StorageSpec, absolute_url, open_storage, optuna_notices_off, retry_callback
from nnexp.studies.trial_link import PRUNER_KEY, WORKER_ATTR
from nnexp.sweeps.grid import SWEEP_RECORD

log = logging.getLogger(__name__)

# hydra.sweeper.pruner by name; a dict with ``_target_`` sets any Optuna pruner and its arguments.
PRUNERS = {
    "none": None,
    "median": {"_target_": "optuna.pruners.MedianPruner", "n_startup_trials": 5, "n_warmup_steps": 20},
    "successive_halving": {"_target_": "optuna.pruners.SuccessiveHalvingPruner", "min_resource": 40, "reduction_factor": 2},
    "hyperband": {"_target_": "optuna.pruners.HyperbandPruner"},
}
SCOPES = ("study", "run")


def pruner_config(pruner: Any) -> dict | None:
    """The pruner's ``_target_`` config from a name in PRUNERS or a config node."""
    if pruner is None or isinstance(pruner, str):
        if str(pruner).lower() in ("none", "null"):
            return None
        if pruner not in PRUNERS:
            raise ConfigError("hydra.sweeper.pruner", pruner, f"one of {', '.join(PRUNERS)}, or a config with _target_")
        return PRUNERS[pruner]
    config = OmegaConf.to_container(pruner, resolve=True) if OmegaConf.is_config(pruner) else dict(pruner)
    if "_target_" not in config:
        raise ConfigError("hydra.sweeper.pruner", config, "a config with _target_: optuna.pruners.<Pruner>")
    return config


def trial_seed(seed: int, number: int) -> int:
    """Trial ``number``'s sampler seed: distinct for every trial of the study whichever worker
    asks for it, and the same on every rerun."""
    import numpy as np

    return int(np.random.SeedSequence([int(seed), int(number)]).generate_state(1)[0])


def claim_dir(path: Path) -> Path:
    """Make ``path``, or ``path-2``, ``path-3`` ... when another worker made it first (two workers
    started in the same second): mkdir is atomic, so no two workers share a sweep dir."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in range(1, 10_000):
        candidate = path if suffix == 1 else path.with_name(f"{path.name}-{suffix}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"no free sweep dir next to {path}")


def quoted(text: str) -> str:
    """A string value for a Hydra override."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


class OptunaSweeper(Sweeper):
    """``hydra/sweeper=optuna``: Optuna's samplers and pruners over Hydra's sweep syntax, with
    any Optuna storage, many workers on one study, and each trial's job dir named by its number."""

    def __init__(self, sampler: Any = None, pruner: Any = None, direction: str = "maximize", study_name: str | None = None,
                 storage: str | None = None, n_trials: int = 20, n_trials_scope: str = "study", n_jobs: int = 1,
                 params: dict | None = None, heartbeat_interval: int | None = 60, grace_period: int | None = 120,
                 retries: int = 0, report_every: int = 10):
        if direction not in ("maximize", "minimize"):
            raise ConfigError("hydra.sweeper.direction", direction, "maximize or minimize")
        if n_trials_scope not in SCOPES:
            raise ConfigError("hydra.sweeper.n_trials_scope", n_trials_scope,
                              "study (n_trials is the study's total: a relaunch tops it up) or run (this launch adds n_trials)")
        for key, value in (("n_trials", n_trials), ("n_jobs", n_jobs), ("report_every", report_every)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"hydra.sweeper.{key}", value, "a positive whole number")
        if not storage:
            raise ConfigError("hydra.sweeper.storage", storage,
                              "a storage URL: sqlite:///nnexp_optuna.db, postgresql://user:pass@host/db or journal:///path/file.log")
        self.sampler = OmegaConf.to_container(sampler, resolve=True) if OmegaConf.is_config(sampler) else sampler
        self.pruner = pruner_config(pruner)
        self.direction, self.study_name = direction, study_name or "nnexp"
        self.storage = StorageSpec(absolute_url(str(storage)), heartbeat_interval, grace_period, int(retries))
        self.n_trials, self.scope, self.n_jobs, self.report_every = n_trials, n_trials_scope, n_jobs, report_every
        self.params = dict(params or {})
        self.worker = {"host": socket.gethostname(), "pid": os.getpid()}
        self.last_count: int | None = None  # the study's counted trials at the last look
        self.make_sampler = None  # the sampler's factory (functools.partial), built at the first ask

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        self.hydra_context, self.config = hydra_context, config
        sweep_dir = claim_dir(Path(str(config.hydra.sweep.dir)))
        self.claim = Claim(sweep_dir, "nnexp Optuna worker", "give another hydra.sweep.dir")  # a fresh dir: held by this worker
        # Every job, however its launcher composes it, gets this worker's own sweep dir.
        with read_write(config.hydra), open_dict(config.hydra):
            config.hydra.sweep.dir = str(sweep_dir)
            config.hydra.overrides.hydra = [*config.hydra.overrides.hydra, f"hydra.sweep.dir={quoted(str(sweep_dir))}"]
        self.sweep_dir = sweep_dir
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context, task_function=task_function, config=config)

    # -- the study ---------------------------------------------------------------------------

    def open_study(self):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            storage = open_storage(self.storage)
        except Exception as error:  # noqa: BLE001  (bad URL, server down, no driver, no such file)
            reason = " ".join(f"{type(error).__name__}: {error}".split())[:300]
            raise ConfigError("hydra.sweeper.storage", self.storage.url, f"a storage Optuna can open ({reason})") from None
        try:
            return optuna.create_study(study_name=self.study_name, storage=storage, direction=self.direction, load_if_exists=True)
        except ValueError as error:  # a study of that name with another direction
            raise ConfigError("hydra.sweeper.direction", self.direction, f"the study's own ({error})") from None

    def sampler_for(self, number: int):
        """A fresh sampler for trial ``number``: samplers keep their state in the storage, and
        only their random stream in memory, which gets a seed of its own per trial."""
        if not self.sampler:
            return None
        if self.make_sampler is None:  # Hydra builds the factory once; each trial calls it
            from hydra.utils import instantiate

            self.make_sampler = instantiate({**self.sampler, "_partial_": True})
        seed = self.sampler.get("seed")
        return self.make_sampler(seed=trial_seed(seed, number)) if seed is not None else self.make_sampler()

    def counted(self, study) -> list:
        """Trials that count towards the study's total: finished, running or queued (not failed)."""
        from optuna.trial import TrialState

        return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING))

    def trial_id(self, number: int) -> int:
        """The storage's id of trial ``number`` of this study (public storage API)."""
        storage = open_storage(self.storage)
        return storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(self.study_name), number)

    def tell_failed(self, study, number: int, message: str) -> None:
        """End trial ``number`` FAILED, with ``message`` in its ``error`` user attr."""
        from optuna.exceptions import UpdateFinishedTrialError
        from optuna.trial import TrialState

        open_storage(self.storage).set_trial_user_attr(self.trial_id(number), "error", message)
        try:
            study.tell(number, state=TrialState.FAIL)
        except (UpdateFinishedTrialError, ValueError, RuntimeError):  # another worker ended it first
            pass

    def fail_dead_workers(self, study) -> None:
        """Trials left RUNNING by a worker of this host that has ended (killed, out of memory) end
        FAILED, at once; Optuna's heartbeat does the same for other hosts' workers (RDB storages)."""
        import optuna
        from optuna.trial import TrialState

        optuna.storages.fail_stale_trials(study)
        retry = retry_callback(self.storage)
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            worker = trial.user_attrs.get(WORKER_ATTR, {}).get("worker", {})
            if worker.get("host") != self.worker["host"] or not worker.get("pid") or process_alive(int(worker["pid"])):
                continue
            message = f"its worker (pid {worker['pid']} on {worker['host']}) ended before the trial finished"
            self.tell_failed(study, trial.number, message)
            log.warning(f"trial {trial.number}: {message}; marked FAILED")
            if retry is not None:  # re-enqueue its parameters, as Optuna does for stale trials
                retry(study, study.get_trials(deepcopy=False)[trial.number])

    def ask(self, study, space: SearchSpace):
        """A new trial (or one queued by a retry), seeded by its number, with its parameters."""
        trial = study.ask()
        # Who runs it, first: a worker killed from here on leaves a trial the next worker can end.
        info = {"worker": self.worker, "job_dir": str((self.sweep_dir / str(trial.number)).resolve()), "fixed": space.fixed, "data": space.data}
        if self.pruner is not None:
            info[PRUNER_KEY] = self.pruner
        trial.set_user_attr(WORKER_ATTR, info)
        sampler = self.sampler_for(trial.number)
        if sampler is not None:
            study.sampler = sampler  # a trial samples lazily, at suggest: this is its sampler
        for name, distribution in space.distributions.items():
            suggest(trial, name, distribution)
        return trial

    def job_overrides(self, trial, space: SearchSpace) -> list[str]:
        """Trial's job overrides; with a pruner, ``trial=`` tells the job where to report."""
        overrides = space.overrides(trial.params)
        if self.pruner is not None:
            overrides.append(f"trial={{storage:{quoted(self.storage.url)},study:{quoted(self.study_name)},number:{trial.number},every:{self.report_every}}}")
        return overrides

    def sweep(self, arguments: list[str]) -> Any:
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        lines = [f"{key}={value}" for key, value in self.params.items()] + list(arguments)
        space = search_space(parser.parse_overrides(lines), data_identity(self.config))
        OmegaConf.save(self.config, self.sweep_dir / SWEEP_RECORD)
        try:
            with optuna_notices_off():
                return self.run_study(space)
        except BaseException:
            from nnexp.progress import stop_in

            self.claim.release()  # a notebook's traceback keeps this sweeper alive: let the dir go now
            stop_in(self.hydra_context)  # and its live progress line stops before the entry point's last line
            raise

    def run_study(self, space: SearchSpace) -> list:
        """Ask, launch and tell until the study (or this run) has its trials."""
        from nnexp.hydra_integration.sweeper import SweepInterrupted

        study = self.open_study()
        refuse_other_data(study, space)  # before this worker writes or asks anything
        write_json(self.sweep_dir / STUDY_FILE, {"study": self.study_name, "storage": self.storage.url})
        self.fail_dead_workers(study)
        from nnexp.progress import find
        from nnexp.studies.summary import ended_trials

        if self.scope == "study" and (progress := find(self.hydra_context)) is not None:
            progress.count_earlier(*ended_trials(study))  # n_trials is the study's total: count on from its ended trials
        launched = failures = 0
        returns, trials = [], []
        try:
            while (size := self.next_batch_size(study, launched)) > 0:
                trials = [self.ask(study, space) for _ in range(size)]
                trials = self.drop_surplus(study, trials)
                if not trials:
                    break
                with self.heartbeat(trials):
                    results = self.launch(trials, space)
                failed = sum(not self.tell(study, trial, result) for trial, result in zip(trials, results))
                if failed and self.last_count is not None:
                    self.last_count -= failed
                failures += failed
                if failures >= self.n_trials:  # failed trials do not count: without this, a config every trial fails loops
                    log.warning(f"{failures} trials failed in this run, as many as n_trials: stopping; "
                                "their errors are in the study summary below")
                    break
                launched += len(trials)
                returns.append(results)
        except KeyboardInterrupt:
            from optuna.trial import TrialState

            stored = study.get_trials(deepcopy=False)
            for trial in trials:  # the batch that was running: FAIL, so that a relaunch runs it again
                if stored[trial.number].state == TrialState.RUNNING:
                    self.tell_failed(study, trial.number, "interrupted (Ctrl-C or SIGTERM on its worker)")
            raise SweepInterrupted(self.sweep_dir) from None
        finally:
            self.fail_dead_workers(study)
        from nnexp.studies.summary import summarise_study

        summarise_study(study, self.sweep_dir, figures=False)  # Optuna's figures go into the sweep's report
        return returns

    def next_batch_size(self, study, launched: int) -> int:
        """How many trials to ask for next: up to ``n_jobs``, within the study's (or this run's)
        total, counted afresh (one storage read a batch): a worker that finds the study full asks
        for no trial, and so leaves no surplus trial to fail. Workers that ask at the same
        moment are caught by ``drop_surplus``."""
        if self.scope == "run":
            return min(self.n_jobs, self.n_trials - launched)
        self.last_count = len(self.counted(study))  # now, not at the last ask: a study other workers filled meanwhile asks for none
        return min(self.n_jobs, self.n_trials - self.last_count)

    def drop_surplus(self, study, trials: list) -> list:
        """Two workers asking at the same moment can take the study past ``n_trials``: a trial
        numbered past the total is ended at once (FAILED, ``error`` says why) rather than trained."""
        if self.scope == "run":
            return trials
        counted = sorted(trial.number for trial in self.counted(study))
        self.last_count = len(counted)
        kept = []
        for trial in trials:
            if counted.index(trial.number) < self.n_trials:
                kept.append(trial)
            else:
                self.tell_failed(study, trial.number, f"not run: another worker had already taken the study to n_trials={self.n_trials}")
        return kept

    def launch(self, trials: list, space: SearchSpace) -> list:
        """Launch the trials' jobs, numbered by trial number: in one launch on nnexp's launchers,
        whatever numbers other workers took in between (so a cluster packs them into the same
        tasks), else each run of consecutive numbers in one launch."""
        if hasattr(self.launcher, "launch_numbered"):
            return list(self.launcher.launch_numbered([self.job_overrides(t, space) for t in trials], [t.number for t in trials]))
        results = []
        start = 0
        for end in range(1, len(trials) + 1):
            if end == len(trials) or trials[end].number != trials[end - 1].number + 1:
                group = trials[start:end]
                results.extend(self.launcher.launch([self.job_overrides(t, space) for t in group], initial_job_idx=group[0].number))
                start = end
        return results

    def tell(self, study, trial, result) -> bool:
        """Tell Optuna how the trial's job ended: its objective, PRUNED, or FAIL with the job's
        message; False for FAIL (the trial no longer counts towards the study's total). The
        job's record comes in memory from nnexp's launchers, else from the dir another
        launcher's process wrote."""
        from optuna.trial import TrialState

        record = getattr(result, "record", None)
        if record is None and result.status.name == "COMPLETED":
            record = self.written_record(trial.number)
        if record is None or result.status.name != "COMPLETED":
            message = "the job wrote no metrics.json"
            if result.status.name != "COMPLETED":
                try:
                    _ = result.return_value  # raises the job's error
                except Exception as error:  # noqa: BLE001  (any job error ends the trial FAILED)
                    message = f"{type(error).__name__}: {error}".splitlines()[0][:500]
            self.tell_failed(study, trial.number, message)
            return False
        if record.fit is not None:
            trial.set_user_attr("epochs", float(record.fit.epochs))
        if record.status == "pruned":
            study.tell(trial, state=TrialState.PRUNED)
        elif record.status == "ok" and record.objective is not None:
            study.tell(trial, float(record.objective))
        else:
            message = record.error or f"{record.status}: the fit's loss {'diverged' if record.status == 'diverged' else 'failed'}"
            self.tell_failed(study, trial.number, f"{record.status}: {message}" if record.error else message)
            return False
        return True

    def written_record(self, number: int):
        """Trial ``number``'s record as its job's process wrote it (None when there is none)."""
        from nnexp.metrics import read_record
        from nnexp.results import METRICS_FILE

        try:
            return read_record(self.sweep_dir / str(number) / METRICS_FILE)
        except (OSError, ValueError):
            return None

    @contextmanager
    def heartbeat(self, trials: list):
        """Optuna's heartbeat for the running trials (RDB storages with ``heartbeat_interval``):
        a worker that dies stops beating, and other workers' ``fail_stale_trials`` end its trials."""
        storage = open_storage(self.storage)
        interval = storage.get_heartbeat_interval() if hasattr(storage, "get_heartbeat_interval") else None
        if not interval:
            yield
            return
        ids = [self.trial_id(trial.number) for trial in trials]
        stop = threading.Event()

        def beat() -> None:
            while True:
                for trial_id in ids:
                    storage.record_heartbeat(trial_id)
                if stop.wait(interval):
                    return

        thread = threading.Thread(target=beat, name="optuna-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


def suggest(trial, name: str, distribution) -> Any:
    """Suggest ``name`` from ``distribution`` through the trial's public suggest methods."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    if isinstance(distribution, CategoricalDistribution):
        return trial.suggest_categorical(name, distribution.choices)
    suggest_number = trial.suggest_float if isinstance(distribution, FloatDistribution) else trial.suggest_int
    return suggest_number(name, distribution.low, distribution.high, step=distribution.step, log=distribution.log)
