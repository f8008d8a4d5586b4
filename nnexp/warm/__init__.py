"""A warm process for ``nnexp`` commands: on by default on an interactive terminal.

Importing torch and Lightning costs most of a short command's time. On a terminal (stdin,
stdout and stderr all terminals; no CI variable set; not inside a SLURM job; ``NNEXP_WARM`` not
0), or wherever ``NNEXP_WARM=1``, the first ``nnexp`` command starts a server that has imported them once; each later command forks
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


ON, OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
# Set by CI services (GitHub Actions, GitLab, Jenkins, Buildkite, Azure, CircleCI, Travis ...): no warm process there.
CI_VARIABLES = ("CI", "CONTINUOUS_INTEGRATION", "GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "BUILDKITE", "TF_BUILD",
                "CIRCLECI", "TRAVIS", "TEAMCITY_VERSION", "BUILD_ID")
SLURM_VARIABLES = ("SLURM_JOB_ID", "SLURM_JOBID", "SLURM_STEP_ID")


def requested(environ=os.environ) -> bool:
    """Whether the user asked for the warm process (``NNEXP_WARM`` set to 1, true, yes or on)."""
    return environ.get("NNEXP_WARM", "").strip().lower() in ON


def by_default(environ=os.environ, terminals: bool | None = None) -> bool:
    """Whether a command with ``NNEXP_WARM`` unset uses the warm process: on an interactive
    terminal only (``terminals``: stdin, stdout and stderr all terminals), never under CI or SLURM."""
    if environ.get("NNEXP_WARM", "").strip():
        return False
    if any(environ.get(name) for name in CI_VARIABLES + SLURM_VARIABLES):
        return False
    if terminals is None:
        terminals = all(os.isatty(fd) for fd in (0, 1, 2))
    return terminals


def wanted(environ=os.environ, terminals: bool | None = None) -> bool:
    """Whether this command uses the warm process: ``NNEXP_WARM=1``, or :func:`by_default`."""
    return requested(environ) or by_default(environ, terminals)
