"""Sweep jobs: identity by resolved config, skip-if-finished, failure records, atomic commits.

A finished job's result files are committed to a store (``paths.store_dir``) by one atomic
directory rename, so a sweep killed at any moment loses no finished job and runs none twice:
on relaunch, a job whose config is in the store (or already finished in its own dir, with
``resume=DIR``) is restored instead of retrained.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from omegaconf import DictConfig, OmegaConf

from nnexp.results import CONFIG_FILE, HISTORY_FILE, METRICS_FILE, read_json, write_json

# Keys that do not change what a job computes: where it writes, how it prints, how it is launched.
VOLATILE_KEYS = ("paths", "quiet", "plots", "task_name", "logger", "refit", "resume", "threads", "fresh", "hydra")
FINISHED = ("ok", "diverged")
RESULT_FILES = (CONFIG_FILE, METRICS_FILE, HISTORY_FILE, "model.pt")
REUSED_FILE = ".reused"  # in a job dir whose result was restored from the store: the entry's path


def resolved_settings(cfg: DictConfig) -> dict:
    """The resolved config without the volatile keys (which are not resolved either: the run dir
    may be ``${hydra:runtime.output_dir}``, unknown before Hydra makes it)."""
    settings = {}
    for key in cfg:
        if key not in VOLATILE_KEYS:
            value = cfg[key]  # resolves an interpolation
            settings[key] = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
    return settings


def settings_hash(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


# Part of every job's identity. Raise it when the same config stops computing the same result,
# so that no store entry from before is reused: 2 = scikit-learn's solver semantics (velocity SGD,
# Adam's epsilon, L-BFGS-B, the stopping count, Glorot biases) and the lecture's MNIST permutation.
RESULTS_VERSION = 2


def job_key(cfg: DictConfig) -> str:
    """A job's identity: a hash of its resolved config without the volatile keys, and of the
    version of what nnexp computes from a config (``RESULTS_VERSION``)."""
    return settings_hash({"results_version": RESULTS_VERSION, **resolved_settings(cfg)})


def finished_metrics(run_dir: Path, key: str) -> dict | None:
    """The metrics of a finished job with this key in ``run_dir``, if there is one."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return None
    try:
        metrics = read_json(path)
    except (OSError, ValueError):
        return None
    return metrics if metrics.get("job_key") == key and metrics.get("status") in FINISHED else None


class JobStore:
    """Finished jobs by key: ``<root>/<key>/`` holds the job's result files."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def lookup(self, key: str) -> Path | None:
        entry = self.root / key
        return entry if finished_metrics(entry, key) else None

    def commit(self, key: str, run_dir: Path, replace: bool = False) -> None:
        """Copy the result files into the store; the directory rename is the commit point.
        ``replace``: a fresh result takes the place of a stored one (moved aside first, then removed)."""
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=self.root, prefix=f".{key}."))
        for name in RESULT_FILES:
            if (Path(run_dir) / name).is_file():
                shutil.copy2(Path(run_dir) / name, staging / name)
        old = None
        if replace and (self.root / key).is_dir():
            old = Path(tempfile.mkdtemp(dir=self.root, prefix=f".{key}.old."))
            os.replace(self.root / key, old / key)
        try:
            os.rename(staging, self.root / key)
        except OSError:  # another worker committed the same config first
            shutil.rmtree(staging, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def restore(self, entry: Path, run_dir: Path) -> None:
        """Copy a stored job's result files into ``run_dir`` (files first, metrics last)."""
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        for name in (CONFIG_FILE, HISTORY_FILE, "model.pt", METRICS_FILE):
            if (entry / name).is_file():
                shutil.copy2(entry / name, Path(run_dir) / f".{name}.tmp")
                os.replace(Path(run_dir) / f".{name}.tmp", Path(run_dir) / name)


def failure_status(error: BaseException) -> str:
    """``oom`` for out-of-memory errors (host or GPU), else ``failed``."""
    text = f"{type(error).__name__} {error}".lower()
    return "oom" if isinstance(error, MemoryError) or "out of memory" in text or "outofmemory" in text else "failed"


def run_job(cfg: DictConfig, run: Callable[[DictConfig], float], say: Callable[[str], None] = print) -> float:
    """Run one sweep job unless an identical config already finished; never raise for a bad job.

    A job that raises is recorded in its ``metrics.json`` with ``status`` failed or oom and the
    error message, and the sweep goes on; failed jobs are not stored, so a relaunch retries them.
    A job restored from the store gets a ``.reused`` marker (the summary counts them); with
    ``fresh=true`` every job trains, and its result replaces the stored one.
    """
    key = job_key(cfg)
    run_dir = Path(cfg.paths.output_dir)
    store = JobStore(Path(cfg.paths.store_dir))
    fresh = bool(cfg.get("fresh", False))
    metrics = None if fresh else finished_metrics(run_dir, key)
    if metrics is None and not fresh and (entry := store.lookup(key)) is not None:
        store.restore(entry, run_dir)
        metrics = finished_metrics(run_dir, key)
        (run_dir / REUSED_FILE).write_text(f"{entry}\n")
    if metrics is None:
        (run_dir / REUSED_FILE).unlink(missing_ok=True)  # this run trains it
    if metrics is not None:
        say(f"skipped, finished earlier: {metrics['status']}, objective {metrics.get('objective')}")
        objective = metrics.get("objective")
        return float("nan") if objective is None else float(objective)
    try:
        objective = run(cfg)
    except KeyboardInterrupt:
        raise
    except Exception as error:  # a bad job must not stop the sweep
        status = failure_status(error)
        message = f"{type(error).__name__}: {error}".splitlines()[0][:500]
        write_json(run_dir / METRICS_FILE, {"status": status, "error": message, "objective": None, "job_key": key})
        say(f"{status}: {message}")
        return float("nan")
    metrics = read_json(run_dir / METRICS_FILE)  # written by the run, job_key included
    if metrics.get("status") in FINISHED:
        store.commit(key, run_dir, replace=fresh)
    return float("nan") if objective is None or math.isnan(objective) else float(objective)
