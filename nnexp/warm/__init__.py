"""A warm process for ``nnexp`` commands (opt-in: ``NNEXP_WARM=1``).

Importing torch and Lightning costs most of a short command's time. With ``NNEXP_WARM=1`` the
first ``nnexp`` command starts a server that has imported them once; each later command forks
it, and the fork becomes the command: the caller's terminal (its stdin, stdout and stderr, passed
as file descriptors), working directory, environment and arguments; Ctrl-C and the exit status go
back and forth through the thin client the shell started. A server serves one user (the socket's
folder is the user's alone, and the server checks each caller's uid) and one environment: its
socket is named after a fingerprint of the Python, the installed packages and nnexp's own files,
so that a change to any of them starts a new server. Servers exit after ``NNEXP_WARM_IDLE``
seconds without a command (default 900); ``nnexp-warm stop`` stops them now.
"""

from __future__ import annotations

import os

DEFAULT_IDLE_SECONDS = 900.0


def requested(environ=os.environ) -> bool:
    """Whether the user asked for the warm process (``NNEXP_WARM`` set to 1, true, yes or on)."""
    return environ.get("NNEXP_WARM", "").strip().lower() in ("1", "true", "yes", "on")
