"""A Ctrl-C that is never lost between sweep jobs.

Python turns SIGINT into a KeyboardInterrupt wherever the main thread happens to be. Where that
is a finalizer (Lightning's profiler tears down in ``__del__`` when the garbage collector frees
a job's Trainer), Python prints "Exception ignored" and carries on, and so does the sweep: the
user's Ctrl-C is gone. While :func:`remembered` is in force, SIGINT still raises at once, as
Python's own handler does, and is also noted, so that the next job boundary
(:func:`raise_if_interrupted`) raises it again if something swallowed it.

Signals are the process's, so the note is too: one per process, set up by the entry point.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


class _CtrlC:
    """Whether a SIGINT arrived while the handler was installed."""

    def __init__(self) -> None:
        self.received = False

    def handle(self, signum, frame) -> None:
        self.received = True
        raise KeyboardInterrupt


_ctrl_c = _CtrlC()


@contextlib.contextmanager
def remembered() -> Iterator[None]:
    """Note every SIGINT while the block runs (from the main thread, where Python's default
    handler is in force; elsewhere this does nothing), and put the previous handler back after."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield
        return
    _ctrl_c.received = False
    signal.signal(signal.SIGINT, _ctrl_c.handle)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGINT) == _ctrl_c.handle:  # Lightning ignores SIGINT after one; leave that
            signal.signal(signal.SIGINT, signal.default_int_handler)
        _ctrl_c.received = False


def raise_if_interrupted() -> None:
    """Raise KeyboardInterrupt if a Ctrl-C arrived and was swallowed before reaching the caller."""
    if _ctrl_c.received:
        raise KeyboardInterrupt
