"""Figures drawn by a detached process, so that a command returns as soon as its table is printed
(matplotlib's import and drawing take ~0.5 s), and a way to wait for them.

The launching process writes the drawing process's pid to ``<folder>/.drawing`` before it
returns; the drawing process removes the file when it is done. ``nnexp-plot`` waits while the
file names a live process, so it never reads or redraws half-finished figures.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

MARKER = ".drawing"


def start_drawing(folder: Path, module: str, log_name: str) -> None:
    """Run ``python -m <module> <folder>`` detached, its errors in ``<folder>/<log_name>``."""
    folder = Path(folder)
    with open(folder / log_name, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", module, str(folder)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
        )
    (folder / MARKER).write_text(f"{process.pid}\n")


def finish_drawing(folder: Path) -> None:
    """Called by the drawing process when it is done (also when it failed)."""
    marker = Path(folder) / MARKER
    try:
        if int(marker.read_text()) == os.getpid():
            marker.unlink()
    except (OSError, ValueError):
        pass


def wait_for_drawing(folder: Path, poll: float = 0.05) -> None:
    """Return once no drawing process is working on ``folder``'s figures."""
    marker = Path(folder) / MARKER
    while True:
        try:
            pid = int(marker.read_text())
        except (OSError, ValueError):
            return
        if not running(pid):
            marker.unlink(missing_ok=True)  # it ended without removing the file (killed, say)
            return
        time.sleep(poll)


def running(pid: int) -> bool:
    """Whether process ``pid`` exists and has not exited (a zombie has)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    except (OSError, IndexError):
        return True
