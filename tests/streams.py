"""Waiting on what a process writes, not on a clock: a test blocks in ``select`` until a line it
expects arrives on a pipe, or a stream it watches ends (then the event can no longer come)."""

from __future__ import annotations

import os
import selectors
import subprocess
from contextlib import contextmanager
from pathlib import Path


class Stream:
    """A pipe read through its file descriptor as bytes arrive (no buffer that ``select`` cannot see)."""

    def __init__(self, pipe):
        self.fd, self.data, self.ended = pipe.fileno(), b"", False

    @property
    def text(self) -> str:
        return self.data.decode(errors="replace")

    def read(self) -> None:
        chunk = os.read(self.fd, 65536)
        self.ended = not chunk
        self.data += chunk


def wait_for(found, *streams: Stream) -> None:
    """Block until ``found()`` holds, reading the streams as they are written; AssertionError
    when one of them ends first (its process exited: what the test waits for will not come)."""
    selector = selectors.DefaultSelector()
    for stream in streams:
        selector.register(stream.fd, selectors.EVENT_READ, stream)
    try:
        while not found():
            for key, _ in selector.select():
                key.data.read()
                if key.data.ended and not found():
                    raise AssertionError(f"a stream ended before the awaited output; it said:\n{key.data.text[-3000:]}")
    finally:
        selector.close()


@contextmanager
def followed(path: Path):
    """The file at ``path`` as a Stream, from its first line, as it is written (``tail -F`` also
    waits for the file to appear)."""
    tail = subprocess.Popen(["tail", "-F", "-n", "+1", str(path)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        yield Stream(tail.stdout)
    finally:
        tail.kill()
        tail.wait()
