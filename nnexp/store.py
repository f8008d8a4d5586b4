"""Job identity and the store of finished jobs.

A job is identified by its resolved config (``job_key``). A finished job's result files are
committed to a store (``paths.store_dir``) by one atomic directory rename, so a sweep killed at
any moment loses no finished job and runs none twice: on relaunch, a job whose key is in the
store (or already finished in its own dir, with ``resume=DIR``) is restored instead of retrained.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from nnexp import durable
from nnexp.metrics import RunRecord, read_record
from nnexp.results import CONFIG_FILE, HISTORY_FILE, METRICS_FILE, MODEL_FILE, PROVENANCE_FILE, copy_atomic

# Keys that do not change what a job computes: where it writes, how it prints, how it is launched.
VOLATILE_KEYS = ("paths", "quiet", "plots", "sklearn", "task_name", "logger", "refit", "resume", "threads", "fresh", "trial",
                 "hydra", "print_config", "fail_fast")
RESULT_FILES = (CONFIG_FILE, HISTORY_FILE, MODEL_FILE, PROVENANCE_FILE, METRICS_FILE)  # metrics last: it marks the job finished
MANIFEST_FILE = "manifest.json"  # in a store entry: each result file's size and SHA-256
REUSED_FILE = ".reused"  # in a job dir whose result was restored from the store: the entry's path


def override_root(override: str) -> str:
    """The top-level key or group an override sets: ``data`` for ``+data.path=x`` or ``data=iris``."""
    return override.split("=", 1)[0].lstrip("+~").split(".")[0].split("/")[0]


def launch_only(override: str) -> bool:
    """Whether an override changes only how jobs are launched, shown or stored, not their results."""
    return override_root(override) in (*VOLATILE_KEYS, "launcher")


def chooses_data(override: str) -> bool:
    """Whether an override chooses the data a job trains on (the data group or its keys, or an experiment)."""
    return override_root(override) in ("data", "experiment")


# Part of every job's identity. Raise it when the same config stops computing the same result,
# so that no store entry from before is reused: 2 = scikit-learn's solver semantics (velocity SGD,
# Adam's epsilon, L-BFGS-B, the stopping count, Glorot biases) and the lecture's MNIST permutation;
# 3 = the data's fingerprint is part of the identity; 4 = scikit-learn's random_state (init=sklearn:
# weights, early-stopping split and minibatch order from numpy's RandomState) and its log-loss value.
RESULTS_VERSION = 4


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
    """A short, stable hash of plain settings."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def data_fingerprint(cfg: DictConfig) -> str:
    """The fingerprint of the data a job trains on (``DataBundle.fingerprint``)."""
    from nnexp.data.loading import load_data

    try:
        return load_data(cfg.data).fingerprint
    except Exception:  # the job itself reports why its data cannot load; failed jobs are never stored
        return "unloadable"


def job_key(cfg: DictConfig) -> str:
    """A job's identity: a hash of its resolved config without the volatile keys, of the data it
    trains on (``data_fingerprint``), and of the version of what nnexp computes from a config
    (``RESULTS_VERSION``)."""
    # (Not under "data": that is the data config's own key in the settings.)
    return settings_hash({**resolved_settings(cfg), "results_version": RESULTS_VERSION, "data_fingerprint": data_fingerprint(cfg)})


def finished_record(run_dir: Path, key: str | None = None) -> RunRecord | None:
    """The record of a finished job in ``run_dir`` (with this key, when one is given), if there is one."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return None
    try:
        record = read_record(path)
    except (OSError, ValueError):
        return None
    return record if record.finished and key in (None, record.job_key) else None


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def linked(source: Path, target: Path) -> bool:
    """Hard-link a run dir's result file into a store entry, False where the file systems differ
    or refuse links (then the caller copies it). The run dir's file was synced before the
    metrics.json that finished the job (``durable``), so a link needs neither a copy nor a second sync; and
    nnexp replaces a run dir's files only by renames, never in place, so the entry keeps what was
    committed (its manifest's SHA-256s catch a file changed in place by hand)."""
    try:
        os.link(source, target)
    except OSError:
        return False
    return True


class JobStore:
    """Finished jobs by key: ``<root>/<key>/`` holds the job's result files and their manifest."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def lookup(self, key: str) -> Path | None:
        """The entry of a finished job with this key, if there is one and it is whole."""
        entry = self.root / key
        return entry if entry.is_dir() and self.damage(key) is None else None

    def damage(self, key: str) -> str | None:
        """What is wrong with the entry of ``key``, if there is one and it is not whole: its
        manifest's files are checked by size and SHA-256, and its metrics must be a finished job's."""
        entry = self.root / key
        if not entry.is_dir():
            return None
        try:
            manifest = json.loads((entry / MANIFEST_FILE).read_text())
        except (OSError, ValueError):
            return f"no readable {MANIFEST_FILE}"
        for name, expected in manifest.items():
            path = entry / name
            if not path.is_file():
                return f"{name} is missing"
            if path.stat().st_size != expected["size"] or file_digest(path) != expected["sha256"]:
                return f"{name} is not the file that was stored"
        if not finished_record(entry, key):
            return f"{METRICS_FILE} is not a finished job's"
        return None

    def commit(self, key: str, run_dir: Path, replace: bool = False) -> None:
        """Link (else copy) the result files and write their manifest into the store; the
        directory rename is the commit point. ``replace``: this result takes the place of a stored
        one (a fresh run's, or a damaged entry's), which is moved aside first and then removed."""
        self.root.mkdir(parents=True, exist_ok=True)
        staging = durable.new_folder(self.root, prefix=f".{key}.")  # the umask's mode, not 0700
        manifest, copied = {}, []
        for name in RESULT_FILES:
            if (Path(run_dir) / name).is_file():
                if not linked(Path(run_dir) / name, staging / name):
                    shutil.copy2(Path(run_dir) / name, staging / name)
                    copied.append(name)
                manifest[name] = {"size": (staging / name).stat().st_size, "sha256": file_digest(staging / name)}
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1))
        # the entry's new files and names on disk before the rename (linked files were synced in the run dir)
        durable.sync(files=[staging / name for name in [*copied, MANIFEST_FILE]], folders=[staging])
        old = None
        if replace and (self.root / key).is_dir():
            old = Path(tempfile.mkdtemp(dir=self.root, prefix=f".{key}.old."))
            os.replace(self.root / key, old / key)
        try:
            os.rename(staging, self.root / key)
            durable.sync(folders=[self.root])  # and the rename itself
        except OSError:  # another worker committed the same config first
            shutil.rmtree(staging, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def restore(self, entry: Path, run_dir: Path) -> RunRecord:
        """Copy a stored job's result files into ``run_dir`` (files first, metrics last); return
        its record, read from the entry."""
        record = read_record(entry / METRICS_FILE)
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        for name in RESULT_FILES:
            if (entry / name).is_file():
                copy_atomic(entry / name, Path(run_dir) / name)
        return record
