"""User-facing errors: one short line that names the config key and the fix."""

from __future__ import annotations


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
