"""Files that survive a crash and can be shared: new files and folders with the modes the umask
gives (``tempfile`` makes them 0600 and 0700), and ``fsync`` of a file's data and of its folder's
entries, so that a power loss leaves the old file or the whole new one, and never a finished
result with an empty file in it.

A job writes several new files into its dir, then ``metrics.json``, which marks them finished.
Inside ``job_syncs_together()`` the syncs of those new files' data and of their folders are put
off, and made together, concurrently, before the rename of ``metrics.json`` (and when the block
ends): the file system commits concurrent syncs together, at a fraction of the cost of one after
another. A file that replaces an existing one is synced before its rename, as outside a block."""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator


@dataclass
class _PutOff:
    """What a ``job_syncs_together()`` block has not synced yet."""

    files: dict[Path, None] = field(default_factory=dict)  # new files renamed into place, data not yet synced
    folders: dict[Path, None] = field(default_factory=dict)  # folders with renames not yet synced
    marked: bool = False  # a marker (metrics.json) was renamed: files written after it are synced at once


# The syncs put off inside ``job_syncs_together()`` (per thread and task).
_put_off: ContextVar[_PutOff | None] = ContextVar("nnexp_put_off_syncs", default=None)


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


@functools.cache
def _sync_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=8, thread_name_prefix="nnexp-fsync")


if hasattr(os, "register_at_fork"):  # a forked child has none of its parent's threads: it starts its own pool
    os.register_at_fork(after_in_child=_sync_pool.cache_clear)


def sync(files: Iterable[Path] = (), folders: Iterable[Path] = ()) -> None:
    """fsync the files' data and the folders' entries, concurrently where there are several (the
    file system commits them together); a file removed meanwhile needs no sync."""
    calls = [(fsync_file, Path(path)) for path in files] + [(fsync_folder, Path(path)) for path in folders]

    def call(pair) -> None:
        function, path = pair
        try:
            function(path)
        except FileNotFoundError:
            pass

    if len(calls) > 1:
        list(_sync_pool().map(call, calls))
    elif calls:
        call(calls[0])


def data_sync_put_off(path: Path) -> bool:
    """Inside ``job_syncs_together()``, put off the data sync of a new file about to be renamed
    onto ``path`` (none is there yet, so a crash can at worst leave it empty in a dir that has no
    finished result), until ``sync_before_marking_finished`` or the block's end; False elsewhere,
    where the rename replaces a file, or after a marker's rename: then sync it before the rename."""
    put_off = _put_off.get()
    if put_off is None or put_off.marked or os.path.lexists(path):
        return False
    put_off.files[Path(path)] = None
    return True


def renamed_into(folder: Path) -> None:
    """Make a rename into ``folder`` durable: its folder is synced now, or with the others the
    enclosing ``job_syncs_together()`` block put off."""
    put_off = _put_off.get()
    if put_off is None:
        sync(folders=[folder])
    else:
        put_off.folders[Path(folder)] = None


def sync_before_marking_finished(marker: Path) -> None:
    """Before the rename of a file that marks its dir's files finished (``marker``, its temporary
    file): sync its data and everything the block put off, together."""
    put_off = _put_off.get()
    if put_off is None:
        sync(files=[marker])
        return
    files, folders = [*put_off.files, Path(marker)], list(put_off.folders)
    put_off.files.clear()
    put_off.folders.clear()
    put_off.marked = True  # what follows it (sklearn.json, figures) lands beside a finished result
    sync(files, folders)


@contextlib.contextmanager
def job_syncs_together() -> Iterator[None]:
    """Put off the data syncs of new files and the folder syncs after renames in this block, and
    make them together before a marker's rename and when the block ends (also when it raises). A
    block inside another leaves the syncs to the outer one."""
    if _put_off.get() is not None:
        yield
        return
    token = _put_off.set(_PutOff())
    try:
        yield
    finally:
        put_off = _put_off.get()
        _put_off.reset(token)
        sync(put_off.files, put_off.folders)
