"""A sweep job: skip it if an identical config finished, record a failure instead of raising,
and commit a finished result to the store (``nnexp.store``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

from omegaconf import DictConfig

from nnexp.interrupts import raise_if_interrupted
from nnexp.metrics import RunRecord, read_record, write_record
from nnexp.results import METRICS_FILE
from nnexp.store import REUSED_FILE, JobStore, finished_record, job_key

# Trains and records a job whose key is given; returns its objective.
Execute = Callable[[DictConfig, str], float]


def failure_status(error: BaseException) -> str:
    """``oom`` for out-of-memory errors (host or GPU), else ``failed``."""
    text = f"{type(error).__name__} {error}".lower()
    return "oom" if isinstance(error, MemoryError) or "out of memory" in text or "outofmemory" in text else "failed"


def run_job(cfg: DictConfig, execute: Execute, say: Callable[[str], None] = print, key: str | None = None) -> float:
    """Run one sweep job unless an identical config already finished; never raise for a bad job.

    ``execute(cfg, key)`` trains and records the job (``nnexp.runner.run``, or ``record`` of a
    result a batched stack trained). A job that raises is recorded in its ``metrics.json`` with
    ``status`` failed or oom and the error message, and the sweep goes on; failed jobs are not
    stored, so a relaunch retries them. A job restored from the store gets a ``.reused`` marker
    (the summary counts them); with ``fresh=true`` every job trains, and its result replaces the
    stored one. A job dir that holds a finished job of another identity (data edited before a
    ``resume``) is never written over. ``key``: the job's identity, when the caller computed it.
    """
    raise_if_interrupted()  # a Ctrl-C that a finalizer swallowed during the last job stops the sweep here
    key = key or job_key(cfg)
    run_dir = Path(cfg.paths.output_dir)
    store = JobStore(Path(cfg.paths.store_dir))
    fresh = bool(cfg.get("fresh", False))
    replace = fresh
    finished = None if fresh else finished_record(run_dir, key)
    other = None if finished else finished_record(run_dir)
    if other is not None and other.job_key != key:
        say(f"not run: {run_dir} holds a finished job of other settings or data (key {other.job_key}, this one {key}); "
            "its files are kept. Start a new sweep for these settings")
        return float("nan")
    if finished is None and not fresh:
        if (entry := store.lookup(key)) is not None:
            store.restore(entry, run_dir)
            finished = finished_record(run_dir, key)
            (run_dir / REUSED_FILE).write_text(f"{entry}\n")
        elif (damage := store.damage(key)) is not None:
            say(f"stored result damaged ({damage}): training it again, and replacing it")
            replace = True
    if finished is None:
        (run_dir / REUSED_FILE).unlink(missing_ok=True)  # this run trains it
    else:
        say(f"skipped, finished earlier: {finished.status}, objective {finished.objective}")
        return finished.objective_value
    try:
        objective = execute(cfg, key)
    except KeyboardInterrupt:
        raise
    except Exception as error:  # a bad job must not stop the sweep
        status = failure_status(error)
        message = f"{type(error).__name__}: {error}".splitlines()[0][:500]
        write_record(run_dir / METRICS_FILE, RunRecord(key, status, None, error=message))
        say(f"{status}: {message}")
        return float("nan")
    record = read_record(run_dir / METRICS_FILE)
    if record.status == "pruned":  # not a finished result: not stored, and a later sweep trains it whole
        say(f"pruned by Optuna after {record.fit.epochs:g} epochs, score {record.objective_value:.4f}")
        return float("nan")
    if record.finished:
        try:
            store.commit(key, run_dir, replace=replace)
        except OSError as error:  # a read-only or full store: the job dir keeps the result
            say(f"not stored ({error.strerror}: {error.filename}); its result is in {run_dir}, "
                f"but later sweeps will train it again: make {store.root} writable or set paths.store_dir")
    return float("nan") if objective is None or math.isnan(objective) else float(objective)
