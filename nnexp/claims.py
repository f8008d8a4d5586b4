"""Claims: a run's, a job's or a sweep's dir is written by one process at a time.

Before anything is written into a dir, its writer claims it: ``flock(LOCK_EX | LOCK_NB)`` on
``<dir>/.claim``, with the holder's identity (what it runs, pid, host, since) written inside.

Why flock: the kernel releases it when its holder ends, however it ends (SIGKILL, the OOM
killer, a SLURM task's time limit), so a dead process leaves no stale claim behind and nothing
has to guess whether a pid on another host is alive, as an ``O_EXCL`` file or a rename would.
On NFS, Linux takes flock as a whole-file NFS lock, so a claim holds across the nodes of a
cluster (Lustre: mount with ``-o flock``); the lock server frees a dead client's claim when its
lease ends (NFSv4: about 90 s). The file stays, with the last holder's identity, emptied on release.

A claim is re-entrant within its process (a sweep's driver holds its sweep dir while its jobs
claim theirs; a single run's dir is claimed before Hydra writes into it, and again by its job):
a second claim that finds the lock held by its own pid goes on without taking it again.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from nnexp.errors import NnexpError

CLAIM_FILE = ".claim"


class DirBusy(NnexpError):
    """A dir claimed by another live process: one line naming the dir, its holder and the fix."""

    exit_code = 1

    def __init__(self, path: Path, holder: dict, fix: str):
        self.path, self.holder = path, holder
        who = f"{holder.get('what', 'another run')} (pid {holder.get('pid', '?')} on {holder.get('host', '?')})" if holder else "another process"
        super().__init__(f"{path} is in use by {who}; nothing was written there: {fix}")


def identity(what: str) -> dict:
    """Who claims: what it runs, its pid and host, and when."""
    return {"what": what, "pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}


def holder(path: Path) -> dict:
    """The identity written in ``path``'s claim file ({} when none can be read)."""
    try:
        return json.loads((Path(path) / CLAIM_FILE).read_text() or "{}")
    except (OSError, ValueError):
        return {}


def held_here(found: dict) -> bool:
    return found.get("pid") == os.getpid() and found.get("host") == socket.gethostname()


@contextlib.contextmanager
def claim(path: Path, what: str, fix: str) -> Iterator[None]:
    """Hold ``path`` (made if needed) for the block; ``DirBusy`` when another process holds it.
    ``what`` is written in the claim for others to read; ``fix`` ends the busy line."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path / CLAIM_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise  # a file system without locks: say so rather than write unclaimed
            found = holder(path)
            if held_here(found):
                yield  # this process holds it already (re-entrant)
                return
            raise DirBusy(path, found, fix) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(identity(what)).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # released: no reader may take a stale identity for a holder
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class Claim:
    """A claim held until ``release`` (or its process ends): for a holder whose lifetime is not one block."""

    def __init__(self, path: Path, what: str, fix: str):
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(claim(path, what, fix))

    def release(self) -> None:
        self._stack.close()
