"""nnexp from Python: ``run``, ``sweep`` and ``load`` on the command line's configs, run dirs and store.

``nnexp.run("data=moons", "solver=lbfgs", seed=0)`` is ``nnexp data=moons solver=lbfgs seed=0``
in this process: the same composition (Hydra, scikit-learn's names), the same task function, run
dir, job identity and store. ``nnexp.sweep(...)`` is ``nnexp -m ...`` on any launcher. What a
call changes in its process for the duration (Hydra's global state, logging, the SIGINT handler,
the working dir) is put back when it returns, so that calls in one notebook kernel do not
interfere; a mistake raises one ``NnexpError`` whose message is the command line's one line.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import signal
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterator

from nnexp.errors import NnexpError

CONFIG_NAME = "train"


def run(*overrides: str, **values: Any) -> "Run":
    """Train one configuration, as ``nnexp OVERRIDES`` would, and return its ``Run``.

    ``overrides``: command-line strings (``"data=moons"``, ``"solver=lbfgs"``); ``values``: keyword
    overrides, dotted keys through ``**{"model.hidden_sizes": [10, 10]}``."""
    argv = checked_overrides(overrides, values, sweep=False)
    with hydra_session() as hydra:
        from nnexp.preflight import uses_user_config

        if not uses_user_config(argv):  # nnexp's packaged configs cannot change while the process runs
            _reuse_compositions(hydra)
        _wait_for_a_new_second()  # run dirs are named by the second: two quick calls get two dirs
        try:
            result = hydra.run(CONFIG_NAME, _single_task, argv, with_log_configuration=False)
        finally:
            _last_second[0] = int(time.time())  # its run dir was named at this second or before
        if isinstance(result.return_value, BaseException):
            raise result.return_value
        run_dir = Path(str(result.hydra_cfg.hydra.runtime.output_dir))
    return Run(run_dir)


def sweep(*overrides: str, **values: Any) -> "Sweep":
    """Run a multirun in this process, as ``nnexp -m OVERRIDES`` would, on the launcher and sweeper
    the overrides choose, and return its ``Sweep`` (summary written).

    A keyword value that is a list, tuple or range is swept over its items
    (``**{"regularization.alpha": [0.1, 1.0]}``); wrap a list-valued setting in one more list
    (``**{"model.hidden_sizes": [[10], [10, 10]]}``)."""
    from hydra.types import RunMode

    argv = [*checked_overrides(overrides, values, sweep=True), "hydra.mode=MULTIRUN"]  # as `nnexp -m` adds it
    with hydra_session() as hydra:
        sweep_dir = _fresh_sweep_dir(hydra, argv, RunMode.MULTIRUN)
        argv = [*argv, f"hydra.sweep.dir={sweep_dir}"]
        from nnexp.hydra_integration.app import train_task

        from nnexp.fail_fast import SweepStopped, stopped_summary

        try:
            hydra.multirun(CONFIG_NAME, train_task, argv, with_log_configuration=False)
        except KeyboardInterrupt:
            from nnexp.preflight import kept_message

            raise KeyboardInterrupt(kept_message(Path(sweep_dir))) from None
        except SweepStopped as stop:
            stopped_summary(stop)
            raise SweepFailed(str(stop), Sweep(Path(sweep_dir))) from None
    return Sweep(Path(sweep_dir))


class SweepFailed(NnexpError):
    """``fail_fast=true`` stopped a sweep at a failed job; ``.sweep`` holds what finished (summary written)."""

    def __init__(self, message: str, sweep: "Sweep"):
        super().__init__(message)
        self.sweep = sweep


def load(path: str | os.PathLike) -> "Run | Sweep":
    """Open a run dir (it has metrics.json) or a sweep dir (multirun.yaml), the CLI's or the API's."""
    from nnexp.results import METRICS_FILE
    from nnexp.sweeps.grid import SWEEP_RECORD

    path = Path(path)
    if (path / METRICS_FILE).is_file():
        return Run(path)
    if (path / SWEEP_RECORD).is_file():
        return Sweep(path)
    raise NnexpError(f"{path} is neither a run dir (it has no {METRICS_FILE}) nor a sweep dir (no {SWEEP_RECORD}); "
                     "give a dir under outputs/ or multirun/")


@dataclass
class Run:
    """A finished run dir: its scores, history, config, trained model and figures."""

    dir: Path

    def __post_init__(self) -> None:
        self.dir = Path(self.dir)

    @cached_property
    def _saved(self):
        from nnexp.artifacts import Run as SavedRun

        return SavedRun(self.dir)

    @cached_property
    def record(self):
        """metrics.json as a ``RunRecord`` (status, objective, fit measurements)."""
        return self._saved.metrics

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def scores(self) -> dict[str, dict[str, float]]:
        """split -> metric -> value: ``{"train": {"loss": .., "accuracy": ..}, "val": ..., "test": ...}``."""
        fit = self.record.fit
        if fit is None:
            return {}
        score_name = self.record.score_name or "score"
        scores: dict[str, dict[str, float]] = {}
        for name, value in fit.split_scores().items():
            split, metric = name.rsplit("_", 1)
            if split != "holdout":
                scores.setdefault(split, {})[score_name if metric == "score" else metric] = value
        if fit.val_score_std is not None:
            scores["val"][f"{score_name}_std"] = fit.val_score_std
        return scores

    @cached_property
    def history(self):
        """history.csv as a pandas DataFrame, one row per epoch (per L-BFGS iteration)."""
        import pandas as pd

        from nnexp.results import HISTORY_FILE

        return pd.read_csv(self.dir / HISTORY_FILE)

    @cached_property
    def config(self):
        """The run's composed, resolved config (config.yaml)."""
        return self._saved.config

    @property
    def model(self):
        """The trained network (a torch module in eval mode), rebuilt from model.pt."""
        return self._saved.network

    def predict(self, X) -> Any:
        """Predictions for raw inputs (scaled as in training): class labels, or regression values."""
        import numpy as np

        predicted = self._saved.predict(X)
        classes = self._saved.saved.get("classes")
        if self._saved.task.kind != "regression" and classes:
            return np.asarray(classes)[predicted]
        return predicted

    def plot(self, name: str = "curves"):
        """A matplotlib Figure of one of the run's figures (``nnexp-plot``'s kinds: curves, boundary,
        fit, confusion, weights, filters, features), drawn into the run dir; shows inline in Jupyter."""
        return _figure_of(self.dir, name)

    def __repr__(self) -> str:
        test = self.scores.get("test", {})
        shown = ", ".join(f"test {metric} {value:.4f}" for metric, value in test.items() if metric != "loss")
        return f"Run({str(self.dir)!r}, {self.status}{', ' + shown if shown else ''})"


@dataclass
class Sweep:
    """A sweep dir: its summary (summary.csv), its runs and the best of them."""

    dir: Path
    _runs: list[Run] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.dir = Path(self.dir)

    @property
    def summary(self):
        """summary.csv as a DataFrame, best grid point first (written when missing: a sweep still
        running, or one stopped before its end)."""
        import pandas as pd

        from nnexp.sweeps.summary import SUMMARY_FILE

        path = self.dir / SUMMARY_FILE
        if not path.is_file():
            from rich.console import Console

            from nnexp.sweeps.summary import summarise

            summarise(self.dir, plots=False, console=Console(quiet=True))
        return pd.read_csv(path)

    @property
    def runs(self) -> list[Run]:
        """Every job that finished training, in job-number order."""
        from nnexp.sweeps.summary import read_jobs

        return [Run(job.path) for job in read_jobs(self.dir) if job.record is not None and job.record.fit is not None]

    @property
    def best(self) -> Run:
        """The best grid point's best job (rank 1 of the summary)."""
        summary = self.summary
        finished = summary[summary["mean_val_score"].notna()]
        if finished.empty:
            raise NnexpError(f"{self.dir}: no grid point finished without errors, so there is no best run")
        return Run(self.dir / str(finished.iloc[0]["best_job"]))

    def plot(self, name: str = "curves"):
        """A matplotlib Figure of one of the sweep's figures (curves, grid, all's first)."""
        return _figure_of(self.dir, name)

    def __repr__(self) -> str:
        return f"Sweep({str(self.dir)!r})"


def checked_overrides(overrides: tuple, values: dict, sweep: bool) -> list[str]:
    """The command line for these arguments, with scikit-learn's names translated and group
    options checked as the CLI checks them; a mistake is an NnexpError with the CLI's one line."""
    from nnexp.preflight import rewritten, unknown_group_option, user_file_problem

    argv = [str(item) for item in overrides] + [f"{key}={override_value(value, sweep)}" for key, value in values.items()]
    flags = [arg for arg in argv if arg.startswith("-")]
    if flags:
        raise NnexpError(f"{flags[0]}: nnexp.run and nnexp.sweep take overrides (key=value), not command-line flags")
    argv, _ = rewritten(argv)
    problem = unknown_group_option(argv) or user_file_problem(argv)
    if problem:
        raise NnexpError(problem)
    return argv


def override_value(value: Any, sweep: bool = False) -> str:
    """A Python value in Hydra's override grammar; with ``sweep``, a list, tuple or range is the
    comma-separated list of values to sweep over."""
    if sweep and isinstance(value, (list, tuple, range)):
        return ",".join(override_value(item) for item in value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if math.isfinite(value) else {math.inf: "inf", -math.inf: "-inf"}.get(value, "nan")
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(override_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{key}:{override_value(item)}" for key, item in value.items()) + "}"
    text = str(value)
    if text and all(ch.isalnum() or ch in "_-./:+" for ch in text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _single_task(cfg) -> float:
    """Hydra's task function for one run. A diverged run returns (its metrics.json says diverged,
    and the caller gets the Run); a user's error is returned, for the caller to raise."""
    from nnexp.hydra_integration.app import train_task

    try:
        return train_task(cfg)
    except SystemExit as exit_:
        if exit_.code == 1:
            return float("nan")
        raise
    except (NnexpError, OSError) as error:  # handed back, not raised: Hydra would print its own line for it
        return error


@contextlib.contextmanager
def hydra_session() -> Iterator[Any]:
    """Hydra initialised on nnexp's packaged configs for one call (yields Hydra's runner, as
    hydra-zen's ``launch`` uses it), with every process-wide thing the call may change put back
    after: the working dir, logging, the SIGINT handler and Hydra's global state. A user's error
    (a bad override, value or data) comes out as one NnexpError with the CLI's line."""
    import yaml
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from nnexp.compat import targets_trusted, use_libyaml_for_omegaconf
    from nnexp.preflight import one_line
    from nnexp.provenance import git_state

    git_state.cache_clear()  # a kernel lives across commits: each call records the repository as it is now
    from nnexp.hydra_integration.app import CONFIG_PACKAGE, register_plugins
    from nnexp.interrupts import raise_if_interrupted, remembered

    use_libyaml_for_omegaconf()
    with _process_state_kept(), remembered():
        register_plugins()
        GlobalHydra.instance().clear()
        try:
            with initialize_config_module(CONFIG_PACKAGE, **version_base()), targets_trusted():
                yield GlobalHydra.instance().hydra
        except NnexpError as error:
            raise error.with_traceback(None) from None  # the message is all: no frames from Hydra's stack
        except (HydraException, OmegaConfBaseException, yaml.YAMLError) as error:
            cause = error.__cause__ or error.__context__
            if isinstance(cause, NnexpError):  # the task function's own check, wrapped by Hydra
                raise NnexpError(str(cause)) from None
            raise NnexpError(one_line(error)) from None
        except OSError as error:
            if error.filename is None:
                raise
            from nnexp.errors import unwritable_path

            raise NnexpError(unwritable_path(error)) from None
        except SystemExit:
            raise_if_interrupted()  # Lightning turns a Ctrl-C into exit(1)
            raise
        finally:
            GlobalHydra.instance().clear()
            from nnexp.progress import stop_displays

            stop_displays()  # a live sweep line left by a Ctrl-C or a stop


@contextlib.contextmanager
def _process_state_kept() -> Iterator[None]:
    """Put back the working dir, the root logger, the SIGINT handler, NNEXP_TRACEBACK and Hydra's version base."""
    from hydra.version import VersionBase

    version_base_before = VersionBase.instance().version_base  # initialize_config_module sets it, and keeps it
    cwd = os.getcwd()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    sigint = signal.getsignal(signal.SIGINT) if _main_thread() else None
    traceback_setting = os.environ.get("NNEXP_TRACEBACK")
    os.environ["NNEXP_TRACEBACK"] = "1"  # the task function raises a user's error instead of exiting
    try:
        yield
    finally:
        if traceback_setting is None:
            os.environ.pop("NNEXP_TRACEBACK", None)
        else:
            os.environ["NNEXP_TRACEBACK"] = traceback_setting
        if sigint is not None:
            signal.signal(signal.SIGINT, sigint)  # Lightning ignores SIGINT after a Ctrl-C
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:], root.level = handlers, level
        if os.getcwd() != cwd:
            os.chdir(cwd)  # hydra.job.chdir=true moves into the job dir
        VersionBase.instance().version_base = version_base_before  # else later Hydra apps in this process inherit it


def version_base() -> dict[str, str]:
    """Hydra's current defaults, as the CLI asks for them (nnexp.compat's answer where it gives one)."""
    from nnexp import compat

    choose = getattr(compat, "hydra_version_base", None)
    return choose() if callable(choose) else {"version_base": "1.3"}


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


_last_second = [0]  # the wall-clock second at which this process's last call named its dir (or later)


def _wait_for_a_new_second() -> None:
    """Run dirs are named by the second (hydra.run.dir): a call within the second in which the
    last one named its dir would write into the same dir."""
    while int(time.time()) <= _last_second[0]:
        time.sleep(0.02)
    _last_second[0] = int(time.time())


_compositions: dict[str, bytes] = {}  # pickled configs composed by earlier calls, by what composed them
COMPOSITIONS_KEPT = 32


def _reuse_compositions(hydra) -> None:
    """Give this call's Hydra a composition cache shared by the process's calls: composing takes
    0.2-0.4 s here, a sixth of a small fit, and a notebook repeats the same overrides. Each copy
    has its resolved values cleared (``${now:}`` included), so each call gets its own run dir;
    keyed by the working dir too (``hydra.runtime.cwd``)."""
    import pickle

    from omegaconf import OmegaConf

    compose = hydra.compose_config

    def compose_config(**arguments):
        key = repr((os.getcwd(), sorted((name, list(value) if isinstance(value, list) else value)
                                        for name, value in arguments.items())))
        if key not in _compositions:
            _compositions[key] = pickle.dumps(compose(**arguments))
            while len(_compositions) > COMPOSITIONS_KEPT:
                _compositions.pop(next(iter(_compositions)))
        config = pickle.loads(_compositions[key])  # a fresh copy: the run changes its own
        OmegaConf.clear_cache(config)  # resolved values (${now:} of the first call's run dir) go
        return config

    hydra.compose_config = compose_config  # this call's Hydra only (Hydra.run composes through it)


def _fresh_sweep_dir(hydra, argv: list[str], mode) -> str:
    """The sweep dir these overrides name (the user's, or the timestamped default). A default that
    exists already (two sweeps within one second) is passed over for the next second's."""
    while True:
        _wait_for_a_new_second()
        cfg = hydra.compose_config(CONFIG_NAME, argv, run_mode=mode)
        sweep_dir = str(cfg.hydra.sweep.dir)
        if any(arg.startswith("hydra.sweep.dir=") for arg in argv) or not Path(sweep_dir).exists():
            return sweep_dir


def _figure_of(directory: Path, name: str):
    """A Figure holding the PNG that ``nnexp-plot DIR name`` draws, at its own size; the process's
    matplotlib backend is put back afterwards (drawing uses Agg)."""
    import matplotlib
    import matplotlib.image

    from nnexp.drawing import draw

    backend = matplotlib.get_backend()
    try:
        paths = draw(Path(directory), name)
    finally:
        if matplotlib.get_backend() != backend:
            matplotlib.use(backend)
    if not paths:
        raise NnexpError(f"{directory}: nothing to draw for {name}")
    image = matplotlib.image.imread(paths[0])
    dpi = 100
    figure = _shown_figure_class()(figsize=(image.shape[1] / dpi, image.shape[0] / dpi), dpi=dpi)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.imshow(image)
    axes.set_axis_off()
    return figure


@functools.cache
def _shown_figure_class():
    from matplotlib.figure import Figure

    class ShownFigure(Figure):
        """A Figure that Jupyter shows as a PNG, whether or not the kernel's inline backend is on
        (nnexp draws with Agg, so it may never have been)."""

        def _repr_png_(self) -> bytes:
            import io

            buffer = io.BytesIO()
            self.savefig(buffer, format="png")
            return buffer.getvalue()

    return ShownFigure

