"""User-facing errors: one short line that names the config key and the fix."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator, MutableMapping


class NnexpError(Exception):
    """An error caused by the user's input; shown as one line, without a traceback."""

    exit_code = 2


class ConfigError(NnexpError):
    """A config value that is not allowed: names the key, the bad value and what is allowed."""

    def __init__(self, key: str, value: object, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={value!r} is not allowed: {allowed}")


class Refusal(SystemExit):
    """An NnexpError raised where Exceptions are turned into warnings and the work goes on (Hydra's
    callbacks): SystemExit passes through them. Exit code 2; ``error`` is the line's NnexpError."""

    def __init__(self, error: NnexpError):
        super().__init__(error.exit_code)
        self.error = error


class DataError(NnexpError):
    """Data that cannot be used as given (missing file, bad column, NaN values ...)."""


def unwritable_path(error: OSError) -> str:
    """The one line for a path nnexp cannot make or write (read-only, full, not a folder)."""
    return (f"{error.strerror}: {error.filename}; make the folder writable, free space, or write elsewhere "
            "(hydra.run.dir=... or hydra.sweep.dir=...)")


# Hydra's environment variables that change how a user's mistake is shown, or that turn a run
# into an error, with the value nnexp runs under (None: unset). OC_CAUSE is left as the user set
# it: it changes only tracebacks, which nnexp shows with NNEXP_TRACEBACK=1.
HYDRA_ENVIRONMENT: dict[str, str | None] = {
    "HYDRA_FULL_ERROR": "1",  # Hydra raises its errors (nnexp prints each as one line) instead of printing a dozen
    "HYDRA_DEPRECATION_WARNINGS_AS_ERRORS": None,  # a Hydra deprecation would end a run that trains
    "SELF_WARNING_AS_ERROR": None,  # a defaults list without _self_ would end a run that trains
    "HYDRA_MAIN_MODULE": None,  # another app's module would rename the job (its log file, its cluster job)
    "FB_PAR_MAIN_MODULE": None,
    "FB_XAR_MAIN_MODULE": None,
}


def set_hydra_environment(environ: MutableMapping[str, str] = os.environ) -> dict[str, str | None]:
    """Set Hydra's variables as ``HYDRA_ENVIRONMENT`` says, whatever the user's environment has;
    returns what was there before (None: unset), for a caller that puts it back."""
    return _apply(HYDRA_ENVIRONMENT, environ)


@contextlib.contextmanager
def hydra_environment() -> Iterator[None]:
    """``set_hydra_environment`` for one call (the Python API's), the user's variables put back after."""
    before = set_hydra_environment()
    try:
        yield
    finally:
        _apply(before, os.environ)


def _apply(values: dict[str, str | None], environ: MutableMapping[str, str]) -> dict[str, str | None]:
    """Set each variable of ``values`` in ``environ`` (None: unset it); return what was there before."""
    before = {name: environ.get(name) for name in values}
    for name, value in values.items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    return before
