"""Defaults that make the same command fast on the machine it runs on."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import sys
from pathlib import Path
from typing import Iterator, Sequence

import torch

from nnexp import torch_compat
from nnexp.models.cnn import is_convolutional

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
_malloc_tuned = False
_imports_frozen = False


def freeze_imports() -> None:
    """Move every object alive now (torch, Lightning, Hydra ... once imported) out of the cyclic
    garbage collector's reach, once per process. They live as long as the process, and each full
    collection walked all ~500k of them: 0.2 s at random points of a 1.4 s batched sweep."""
    global _imports_frozen
    if not _imports_frozen:
        _imports_frozen = True
        gc.freeze()


def tune_malloc() -> None:
    """Keep glibc from mmap-ing and unmapping every large tensor buffer (once per process).

    With the default dynamic thresholds, each minibatch's activation buffers are fresh mmaps
    that page-fault on first touch: a plain fp32 CNN loop ran at 5.2k images/s here, 8.3k with
    these settings. They only make freed memory stay with the process for reuse.
    """
    global _malloc_tuned
    if _malloc_tuned or not sys.platform.startswith("linux"):
        return
    _malloc_tuned = True
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024)  # glibc's maximum on 64-bit
        libc.mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024)
    except (OSError, AttributeError):  # not glibc (musl, say): nothing to tune
        pass


# Multiply-adds per training step (rows x multiply-adds per row) from which a second intra-op
# thread pays on a quiet machine (scripts/bench_threads.py, 2 cores: 0.95-1.09x up to 4.4e6,
# 1.21x at 5.1e6, 1.3-1.5x beyond). Below it one thread is as fast and cannot spin against others.
AUTO_THREADS_MIN_WORK = 5.0e6


def step_work(inputs: int, hidden: Sequence[int], outputs: int, rows: int) -> float:
    """Multiply-adds of one MLP forward pass over ``rows`` rows (a training step is about three times that)."""
    widths = [int(inputs), *(int(h) for h in hidden), int(outputs)]
    return float(rows) * sum(a * b for a, b in zip(widths, widths[1:]))


def usable_cores() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def other_runnable_tasks() -> int:
    """Tasks of other processes running or waiting for a core right now (Linux's instantaneous
    count in /proc/loadavg, the least of three reads; 0 where there is none)."""
    counts = []
    for _ in range(3):
        try:
            counts.append(int(Path("/proc/loadavg").read_text().split()[3].split("/")[0]))
        except (OSError, IndexError, ValueError):
            return 0
    return max(0, min(counts) - 1)  # this reading task is one of them


def auto_threads(setting, work: float | None) -> int | None:
    """The intra-op thread count for ``threads=setting``: a number is kept, ``null`` leaves
    torch's default (one per core). ``auto``: one thread for an MLP step under
    ``AUTO_THREADS_MIN_WORK`` multiply-adds; otherwise (wider layers, and conv nets, whose work
    is not counted: ``work=None``) one per core that no other process is using when the run
    starts. Under load every extra thread is a loss: with two busy processes on 2 cores, two
    threads made MLP steps 2-80x slower than one (scripts/bench_threads.py --busy 2)."""
    if setting is None:
        return None
    if setting != "auto":
        return int(setting)
    if work is not None and work < AUTO_THREADS_MIN_WORK:
        return 1
    return max(1, min(torch.get_num_threads(), usable_cores() - other_runnable_tasks()))


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Use ``count`` intra-op threads inside the block (None: leave them), then restore the
    caller's: a refit or an in-process run must not leave its process on one thread."""
    before = torch.get_num_threads()
    if count and count != before:
        torch.set_num_threads(int(count))
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: bf16 matmuls and convolutions run faster than fp32 on this CPU."""
    return torch_compat.cpu_has_native_bf16()


def uses_gpu(accelerator: str) -> bool:
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


def resolve_precision(requested: str, network: torch.nn.Module, accelerator: str) -> str:
    """``auto``: bf16 autocast for conv nets where the device computes bf16 natively (measured
    here: 14k -> 22k images/s for the default CNN), fp32 otherwise. Tabular MLPs keep fp32:
    their steps are overhead-bound and bf16 would only cost accuracy."""
    if str(requested) != "auto":
        return requested
    if not is_convolutional(network):
        return "32-true"
    if uses_gpu(accelerator):
        return "bf16-mixed" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "16-mixed"
    return "bf16-mixed" if cpu_has_native_bf16() else "32-true"
