"""Results trained ahead by the batched launcher, waiting for their jobs to record them."""

from __future__ import annotations

from nnexp.fit import FitResult

_results: dict[str, FitResult] = {}


def provide(key: str, result: FitResult) -> None:
    """Hand the job with config hash ``key`` its already-trained result."""
    _results[key] = result


def pending() -> bool:
    """Whether any result waits (so jobs of ordinary sweeps need not hash their config)."""
    return bool(_results)


def take(key: str) -> FitResult | None:
    """The result trained ahead for this job, if any (each is used once)."""
    return _results.pop(key, None)
