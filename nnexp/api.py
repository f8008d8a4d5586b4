"""nnexp from Python: ``run`` and ``sweep`` on the command line's configs, run dirs and store
(what they return, and ``load``, are the views of ``nnexp.views``).

``nnexp.run("data=moons", "solver=lbfgs", seed=0)`` is ``nnexp data=moons solver=lbfgs seed=0``
in this process: the same composition (Hydra, scikit-learn's names), the same task function, run
dir, job identity and store. ``nnexp.sweep(...)`` is ``nnexp -m ...`` on any launcher. What a
call changes in its process for the duration (Hydra's global state, logging, the SIGINT handler,
the working dir) is put back when it returns, so that calls in one notebook kernel do not
interfere; a mistake raises one ``NnexpError`` whose message is the command line's one line.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
from pathlib import Path
from typing import Any, Iterator

from nnexp.errors import NnexpError, Refusal, hydra_environment
from nnexp.views import Run, Sweep

CONFIG_NAME = "train"


def run(*overrides: str, **values: Any) -> Run | None:
    """Train one configuration, as ``nnexp OVERRIDES`` would, and return its ``Run``.

    ``overrides``: command-line strings (``"data=moons"``, ``"solver=lbfgs"``); ``values``: keyword
    overrides, dotted keys through ``**{"model.hidden_sizes": [10, 10]}``. ``mode=validate`` and
    ``mode=params`` train nothing: they print their check, raise as a run would on a bad config,
    and return None."""
    argv = checked_overrides(overrides, values, sweep=False)
    with hydra_session() as hydra:
        from nnexp.preflight import uses_user_config

        if not uses_user_config(argv):  # nnexp's packaged configs cannot change while the process runs
            _reuse_compositions(hydra)
        # Run dirs are named by the second: a call within the second of the last one writes beside
        # that run's dir, which its claim keeps (RunDirClaim), so no call waits for a new second.
        result = _run_once(hydra, argv)
        if isinstance(result.return_value, BaseException):
            raise result.return_value
        run_dir = Path(str(result.hydra_cfg.hydra.runtime.output_dir))
    return Run(run_dir) if result.cfg.mode == "train" else None


def _run_once(hydra, argv: list[str]):
    """``Hydra.run`` of ``argv`` with the single-run task: the same config, callbacks (the run
    dir's claim among them), run dir and ``.hydra`` files, made by ``hydra_job`` as the in-process
    launchers make a job's, without run_job's copies of the config. A run that changes its working
    dir or environment, or a Hydra whose callbacks are not as expected, goes through Hydra.run."""
    from hydra.types import HydraContext, RunMode
    from omegaconf import read_write

    from nnexp.compat import run_callbacks
    from nnexp.hydra_integration.job_record import hydra_job
    from nnexp.hydra_integration.sweep_job import task_config

    config = hydra.compose_config(config_name=CONFIG_NAME, overrides=argv, with_log_configuration=False, run_mode=RunMode.RUN)
    plain = config.hydra.job.chdir is False and not config.hydra.job.env_set and config.hydra.mode in (None, RunMode.RUN)
    callbacks = run_callbacks(config) if plain else None
    if callbacks is None:  # (Hydra.run refuses a mode other than RUN in its own words)
        return hydra.run(CONFIG_NAME, _single_task, argv, with_log_configuration=False)
    with read_write(config.hydra):
        config.hydra.mode = RunMode.RUN
    callbacks.on_run_start(config=config, config_name=CONFIG_NAME)
    context = HydraContext(config_loader=hydra.config_loader, callbacks=callbacks)
    result = None
    try:
        with hydra_job(config, task_config(config), context, _single_task, run_mode=True) as result:
            result.return_value = _single_task(result.cfg)
    finally:  # after a Ctrl-C too, as Hydra 1.4: the run dir's claim is let go (RunDirClaim)
        callbacks.on_run_end(config=config, config_name=CONFIG_NAME, job_return=result)
    _ = result.return_value  # as Hydra.run: a failed job's exception is raised here
    return result


def sweep(*overrides: str, **values: Any) -> Sweep:
    """Run a multirun in this process, as ``nnexp -m OVERRIDES`` would, on the launcher and sweeper
    the overrides choose, and return its ``Sweep`` (summary written).

    A keyword value that is a list, tuple or range is swept over its items
    (``**{"regularization.alpha": [0.1, 1.0]}``); wrap a list-valued setting in one more list
    (``**{"model.hidden_sizes": [[10], [10, 10]]}``)."""
    from hydra.types import RunMode

    argv = [*checked_overrides(overrides, values, sweep=True), "hydra.mode=MULTIRUN"]  # as `nnexp -m` adds it
    with hydra_session() as hydra:
        config = hydra.compose_config(CONFIG_NAME, argv, run_mode=RunMode.MULTIRUN)  # the swept keys at their defaults
        _refuse_items_of_a_list_setting(config, values)
        sweep_dir = _fresh_sweep_dir(config, argv)
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

    def __init__(self, message: str, sweep: Sweep):
        super().__init__(message)
        self.sweep = sweep


def checked_overrides(overrides: tuple, values: dict, sweep: bool) -> list[str]:
    """The command line for these arguments, with scikit-learn's names translated and group
    options checked as the CLI checks them; a mistake is an NnexpError with the CLI's one line."""
    from nnexp.preflight import rewritten, unknown_group_option, user_file_problem

    strings = []
    for item in overrides:  # a list of overrides, as a command line is often kept, stands for its items
        for override in (item if isinstance(item, (list, tuple)) else [item]):
            if not isinstance(override, str):
                raise NnexpError(f"{override!r}: nnexp.run and nnexp.sweep take overrides as strings (\"data=moons\"); "
                                 "give a value by its key instead, e.g. nnexp.run(**{\"optim.lr\": 0.1})")
            strings.append(override)
    argv = strings + [f"{key}={override_value(value, sweep)}" for key, value in values.items()]
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
    """Hydra's task function for one run: the command line's, with a user's error returned for
    the caller to raise (raised, Hydra would print its own line for it); a diverged run returns
    NaN (its metrics.json says diverged, and the caller gets the Run)."""
    from nnexp.hydra_integration.app import train_run

    try:
        return train_run(cfg)
    except (NnexpError, OSError) as error:
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
    with _process_state_kept(), remembered(), hydra_environment():
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
            from nnexp.config_files import misspelt_override

            raise NnexpError(misspelt_override(one_line(error)) or one_line(error)) from None
        except OSError as error:
            if error.filename is None:
                raise
            from nnexp.errors import unwritable_path

            raise NnexpError(unwritable_path(error)) from None
        except Refusal as refusal:  # refused inside Hydra's callbacks (nnexp.hydra_integration.folder_names)
            raise refusal.error.with_traceback(None) from None
        except SystemExit:
            raise_if_interrupted()  # Lightning turns a Ctrl-C into exit(1)
            raise
        finally:
            GlobalHydra.instance().clear()


@contextlib.contextmanager
def _process_state_kept() -> Iterator[None]:
    """Put back the working dir, the root logger, the SIGINT handler and Hydra's version base."""
    from hydra.version import VersionBase

    version_base_before = VersionBase.instance().version_base  # initialize_config_module sets it, and keeps it
    cwd = os.getcwd()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    sigint = signal.getsignal(signal.SIGINT) if _main_thread() else None
    try:
        yield
    finally:
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


def _refuse_items_of_a_list_setting(config, values: dict) -> None:
    """A flat list given for a list-valued setting (``"model.hidden_sizes": [10, 10]``) would be
    swept item by item (hidden_sizes=10, twice): the user meant one list, or a list of them."""
    from omegaconf import OmegaConf

    for key, value in values.items():
        if (isinstance(value, (list, tuple)) and value and not any(isinstance(item, (list, tuple)) for item in value)
                and OmegaConf.is_list(OmegaConf.select(config, key, default=None))):
            given = override_value(list(value))
            raise NnexpError(f"{key}={given}: {key} takes a list, and nnexp.sweep sweeps a list's items "
                             f"({key}={override_value(value[0])}, ...); give [{given}] to run this list, "
                             f"or a list of lists to sweep several, e.g. [[10], [10, 10]]")


def _fresh_sweep_dir(cfg, argv: list[str]) -> str:
    """The sweep dir these overrides name (``cfg``, composed from them): the user's, or the
    timestamped default; a default that exists already (a sweep started within the same second)
    is passed over for ``<dir>-2`` (``-3`` ...), as a single run's dir is (``RunDirClaim``)."""
    wanted = Path(str(cfg.hydra.sweep.dir))
    if any(arg.startswith("hydra.sweep.dir=") for arg in argv):
        return str(wanted)
    candidate, attempt = wanted, 1
    while candidate.exists():
        attempt += 1
        candidate = wanted.with_name(f"{wanted.name}-{attempt}")
    return str(candidate)
