"""One ``hydra.sweeper.storage`` string for every Optuna storage: an sqlite file, any RDB URL, or
a journal file (``journal:///shared/nnexp.log``) for a shared file system without a server."""

from __future__ import annotations

import functools
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

JOURNAL_SCHEME = "journal://"


@dataclass(frozen=True)
class StorageSpec:
    """Where a study lives and how its dead workers are noticed: Optuna's heartbeat (database
    servers: PostgreSQL, MySQL) marks a trial whose worker stopped beating for ``grace_period``
    seconds FAILED, and ``retries`` re-enqueues such a trial's parameters that many times
    (RetryFailedTrialCallback)."""

    url: str
    heartbeat_interval: int | None = 60
    grace_period: int | None = 120
    retries: int = 0

    @property
    def is_journal(self) -> bool:
        return self.url.startswith(JOURNAL_SCHEME)


def absolute_url(url: str) -> str:
    """``url`` with a relative sqlite or journal file path made absolute, so that a job that runs
    in another working dir (``hydra.job.chdir``) or process finds the same study."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and ":memory:" not in url:
        return "sqlite:///" + os.path.abspath(url[len("sqlite:///"):])
    if url.startswith(JOURNAL_SCHEME):
        return JOURNAL_SCHEME + os.path.abspath(url[len(JOURNAL_SCHEME):])
    return url


def open_study(study_name: str, url: str):
    """Load an existing study (``nnexp-summary --study``); ``KeyError`` when it has no such study."""
    import optuna

    url = absolute_url(url)
    for scheme in ("sqlite:///", JOURNAL_SCHEME):  # a file storage that is not there holds no study: not made by reading
        if url.startswith(scheme) and ":memory:" not in url and not os.path.exists(url[len(scheme):].split("?")[0]):
            raise KeyError(study_name)
    storage = open_storage(StorageSpec(url, heartbeat_interval=None))
    with optuna_notices_off():
        return optuna.load_study(study_name=study_name, storage=storage)


def retry_callback(spec: StorageSpec):
    """Optuna's RetryFailedTrialCallback for ``spec.retries`` > 0, else None."""
    if spec.retries <= 0:
        return None
    from optuna.storages import RetryFailedTrialCallback

    return RetryFailedTrialCallback(max_retry=spec.retries)


@contextmanager
def optuna_notices_off():
    """Silence Optuna's notices that say nothing to a user of nnexp: its heartbeat and stale-trial
    API are marked experimental, and it warns that heartbeats are meant for ``Study.optimize``
    (nnexp beats for its ask-and-tell trials itself)."""
    from optuna.exceptions import ExperimentalWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
        yield


def write_ahead_log(engine) -> None:
    """SQLite's write-ahead log for a study file: a commit is an append without a sync of the
    database (synchronous=NORMAL), which takes an ask-and-tell trial from about 45 to 30 ms here,
    and readers no longer wait for a writer (several workers on one host). The log survives a
    crash of the process; an sqlite file on a network file system is not safe in either mode."""
    from sqlalchemy import event

    def on_connect(connection, _record) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(engine, "connect", on_connect)
    engine.dispose()  # the connection Optuna opened to make its tables: reconnect with the pragmas


@functools.lru_cache(maxsize=8)
def open_storage(spec: StorageSpec):
    """The Optuna storage for ``spec``, opened once per process: opening an RDB storage checks
    its schema (tens of ms), and a sweep's driver and its in-process jobs share one."""
    from optuna.storages import RDBStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock, JournalStorage

    if spec.is_journal:
        path = spec.url[len(JOURNAL_SCHEME):]
        # An open(O_EXCL) lock file works on NFS as well as local disks.
        return JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))
    heartbeat = {}
    # An sqlite file has one host: a dead worker there is found by its pid (the sweeper), and a
    # heartbeat would only add a write per trial.
    if spec.heartbeat_interval and not spec.url.startswith("sqlite"):
        heartbeat = dict(heartbeat_interval=int(spec.heartbeat_interval), grace_period=spec.grace_period,
                         failed_trial_callback=retry_callback(spec))
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(3):
        try:
            with optuna_notices_off():
                storage = RDBStorage(spec.url, **heartbeat)
            if spec.url.startswith("sqlite"):
                write_ahead_log(storage.engine)
            return storage
        except (IntegrityError, ProgrammingError):
            # Workers starting together on an empty database race to create Optuna's tables
            # (PostgreSQL: a duplicate type); the winner made them, and the next try finds them.
            if attempt == 2:
                raise
