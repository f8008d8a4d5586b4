"""Files that survive a crash and can be shared: new files and folders with the modes the umask
gives (``tempfile`` makes them 0600 and 0700), and ``fsync`` of a file before it is renamed into
place and of its folder after, so that a power loss leaves the old file or the whole new one."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


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
