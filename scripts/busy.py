"""Busy processes for benchmarks' "busy machine" mode: other work competing for the cores, as
on a shared laptop, a lab server or a SLURM node. Each spins in pure Python until its deadline
(so a killed benchmark leaves nothing running for long) or until the block ends."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from typing import Iterator

SPIN = "import time\ndeadline = time.monotonic() + {seconds}\nwhile time.monotonic() < deadline:\n    pass\n"


@contextlib.contextmanager
def busy_processes(count: int, seconds: float = 600) -> Iterator[list[subprocess.Popen]]:
    """Run ``count`` busy processes for at most ``seconds`` while the block runs."""
    processes = [subprocess.Popen([sys.executable, "-c", SPIN.format(seconds=seconds)]) for _ in range(count)]
    try:
        yield processes
    finally:
        for process in processes:
            process.kill()
            process.wait()
