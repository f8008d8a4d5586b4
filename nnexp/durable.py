"""Files that survive a crash and can be shared: new files and folders with the modes the umask
gives (``tempfile`` makes them 0600 and 0700), and ``fsync`` of a file before it is renamed into
place and of its folder after, so that a power loss leaves the old file or the whole new one.

A job writes several files into its dir; inside ``one_folder_sync_each()`` the folder syncs after
their renames are put off and done once per folder (before a rename that marks the others
finished, and when the block ends), which is as durable and costs a fraction of the syncs."""

from __future__ import annotations

import contextlib
import os
import secrets
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator

# The folders with renames not yet synced, inside ``one_folder_sync_each()`` (per thread and task).
_unsynced: ContextVar[dict[Path, None] | None] = ContextVar("nnexp_unsynced_folders", default=None)


def new_file(folder: Path, prefix: str, suffix: str = "") -> Path:
    """Create an empty file with a fresh name in ``folder``, mode 0666 less the umask."""
    while True:
        path = Path(folder) / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return path
        except FileExistsError:
            continue


def new_folder(folder: Path, prefix: str) -> Path:
    """Create an empty folder with a fresh name in ``folder``, mode 0777 less the umask."""
    while True:
        path = Path(folder) / f"{prefix}{secrets.token_hex(4)}"
        try:
            path.mkdir(mode=0o777)
            return path
        except FileExistsError:
            continue


def fsync_file(path: Path) -> None:
    """Flush a file's contents to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(path: Path) -> None:
    """Flush a folder's entries (the names renamed into it) to disk; a no-op where folders cannot
    be opened (Windows, whose renames are written through)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder: its entries are then as safe as they get
        pass
    finally:
        os.close(fd)


def renamed_into(folder: Path) -> None:
    """Make a rename into ``folder`` durable: its folder is synced now, or once at the end of the
    enclosing ``one_folder_sync_each()`` block."""
    unsynced = _unsynced.get()
    if unsynced is None:
        fsync_folder(folder)
    else:
        unsynced[Path(folder)] = None


def sync_renames_into(folder: Path) -> None:
    """Sync now the renames into ``folder`` that a ``one_folder_sync_each()`` block put off: before
    a rename that must not reach the disk ahead of them (the file that marks a dir finished)."""
    unsynced = _unsynced.get()
    if unsynced is not None and Path(folder) in unsynced:
        del unsynced[Path(folder)]
        fsync_folder(folder)


@contextlib.contextmanager
def one_folder_sync_each() -> Iterator[None]:
    """Put off the folder syncs after renames in this block, and sync each folder once when it ends
    (also when it raises). A block inside another leaves the syncs to the outer one."""
    if _unsynced.get() is not None:
        yield
        return
    token = _unsynced.set({})
    try:
        yield
    finally:
        unsynced = _unsynced.get()
        _unsynced.reset(token)
        for folder in unsynced:
            fsync_folder(folder)
