"""A job: one config trained into its dir, recorded, and committed to the store.

Every launcher builds one ``Job`` per job from its config, identity key, dir and store, and calls
it directly (Hydra's task function is a thin adapter over it; a single run is a job with one
member):

- ``job.done()``: its finished record, from its dir, else restored from the store; None when it
  must train.
- ``job.run(result=None)``: claims its dir (``nnexp.claims``), then prepare
  (``nnexp.plan``), produce unless a result is handed in (a batched stack's, a trial's;
  ``nnexp.runner``), record or record the failure (``nnexp.record``), commit to the store
  (``nnexp.store``). It returns the typed ``RunRecord``, which travels in memory.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, open_dict

from nnexp.claims import DirBusy, claim
from nnexp.durable import job_syncs_together
from nnexp.errors import NnexpError
from nnexp.interrupts import raise_if_interrupted
from nnexp.metrics import FAILED, RunRecord, read_record, write_record
from nnexp.results import METRICS_FILE
from nnexp.store import REUSED_FILE, JobStore, finished_record, job_key

# What a job does with a dir that holds a finished job already.
SKIP = "skip"  # a sweep job: the same job is not trained again; another job's result is kept, and this one not run
KEEP = "keep"  # a single run from the command line: the finished run is kept, and this one refused (DirTaken)
REPLACE = "replace"  # a library call into a dir its caller owns (``nnexp.runner.run``)


class DirTaken(NnexpError):
    """A run dir that holds a finished run: one line naming the dir and the fix."""

    exit_code = 1


def failure_status(error: BaseException) -> str:
    """``oom`` for out-of-memory errors (host or GPU), else ``failed``."""
    text = f"{type(error).__name__} {error}".lower()
    return "oom" if isinstance(error, MemoryError) or "out of memory" in text or "outofmemory" in text else "failed"


def error_line(error: BaseException) -> str:
    """An error as a record's one-line ``error``."""
    return f"{type(error).__name__}: {error}".splitlines()[0][:500]


@dataclass
class Job:
    """One job: its task config (no hydra node), identity, dir and store (None: a single run,
    which is not stored and raises its failure for the command line's one line)."""

    cfg: DictConfig
    dir: Path
    key: str | None = None  # computed by ``run`` when the launcher did not (a bad config fails there, recorded)
    store: JobStore | None = None
    finished: str = SKIP
    say: Callable[[str], None] = print
    console: Any = None
    plots_in_background: bool = False
    fix: str = "wait for it to end, or write elsewhere (hydra.sweep.dir=...)"
    checked: Any = None  # what the light check stage found (``nnexp.checks.Checked``), when a caller ran it
    log: Any = None  # its log file (``nnexp.job_log.JobLog``): what it says, and its results, are written there too
    replace: bool = field(default=False, init=False)  # this result takes a stored one's place (fresh, or damaged)
    restored: bool = field(default=False, init=False)  # its result finished earlier and was taken, not trained

    @classmethod
    def in_sweep(cls, cfg: DictConfig, dir: Path | str, key: str | None = None, say: Callable[[str], None] = print,
                 checked=None, log=None) -> "Job":
        """A sweep's job: quiet, no figures of its own, stored; ``cfg`` is its own copy."""
        from rich.console import Console

        with open_dict(cfg):
            cfg.quiet = True  # no config tree, layer table or progress bar per job
            cfg.plots = False  # the sweep root gets the sweep's figures; nnexp-plot draws any job's
        return cls(cfg, Path(dir), key, JobStore(Path(cfg.paths.store_dir)), SKIP, say, Console(quiet=True), checked=checked,
                   log=log)

    @classmethod
    def single(cls, cfg: DictConfig, console=None, finished: str = REPLACE, plots_in_background: bool = False,
               key: str | None = None, checked=None, log=None) -> "Job":
        """A single run into ``paths.output_dir``, shown on ``console``."""
        from nnexp import console as show

        return cls(cfg, Path(cfg.paths.output_dir), key, None, finished, console=console or show.make_console(),
                   plots_in_background=plots_in_background, fix="wait for it to end, or give another hydra.run.dir",
                   checked=checked, log=log)

    @property
    def fresh(self) -> bool:
        return bool(self.cfg.get("fresh", False))

    def tell(self, text: str, level: int = logging.INFO) -> None:
        """Say ``text`` (a sweep job's line) and write it into the job's log file."""
        self.say(text)
        self.write_log(text, level)

    def write_log(self, text: str, level: int = logging.INFO) -> None:
        """Write ``text`` into the job's log file only (the console showed it otherwise)."""
        if self.log is not None:
            self.log.write(text, level)

    def claimed(self):
        """This job's claim on its dir (a context manager; re-entrant in this process)."""
        return claim(self.dir, f"job {self.key or ''}".strip(), self.fix)

    def done(self) -> RunRecord | None:
        """The job's finished record: from its dir, else restored from its store (with a
        ``.reused`` marker, which the summary counts); None when it must train. A dir that
        holds another job's result is never restored over."""
        if self.fresh:
            return None
        self.key = self.key or job_key(self.cfg)
        here = finished_record(self.dir)
        if here is not None:
            return here if here.job_key == self.key else None
        entry = None if self.store is None else self.store.lookup(self.key)
        if entry is None:
            return None
        with self.claimed():
            record = self.store.restore(entry, self.dir)
            (self.dir / REUSED_FILE).write_text(f"{entry}\n")
        return record

    def run(self, result=None) -> RunRecord | None:
        """Claim the dir, then train (or take ``result``) and record the job unless it is done;
        None for ``mode=params`` and ``validate``, which train nothing. A sweep job never raises
        for a bad job: its failure is recorded and returned (a single run raises it)."""
        raise_if_interrupted()  # a Ctrl-C that a finalizer swallowed during the last job stops the sweep here
        with self.claimed():
            try:
                self.key = self.key or job_key(self.cfg)
                taken = self._taken()
                if taken is not None:
                    return taken
                return self._train(result)
            except KeyboardInterrupt:
                raise
            except Exception as error:  # a bad job must not stop the sweep
                if self.store is None:  # a single run: the command line says it in one line
                    if not isinstance(error, NnexpError):  # a crash, not a mistake (which leaves no run dir)
                        self.write_log(f"{failure_status(error)}: {error_line(error)}", logging.ERROR)
                    raise
                failed = RunRecord(self.key or "", failure_status(error), None, error=error_line(error))
                write_record(self.dir / METRICS_FILE, failed)
                self.tell(f"{failed.status}: {failed.error}", logging.ERROR)
                return failed

    def end(self, status: str, error: str) -> RunRecord:
        """Record how the job ended without training to the end (its task timed out, was
        cancelled, or died): claims the dir; a record of this job there is kept and returned (a
        finished result, or its own failure, whose error says why: see ``forget_ended``)."""
        with self.claimed():
            try:
                self.key = self.key or job_key(self.cfg)
            except Exception:  # noqa: BLE001  (a config that cannot resolve: the record says how its task ended)
                self.key = ""
            here = self._record()
            if here is not None and here.job_key == self.key:
                return here
            ended = RunRecord(self.key, status, None, error=error)
            write_record(self.dir / METRICS_FILE, ended)
            self.tell(f"{status}: {error}", logging.ERROR)
            return ended

    def forget_ended(self) -> None:
        """Remove an earlier launch's record of how this job ended without a result (``FAILED``
        statuses) before a launch that runs it: a record of the job in its dir when its task dies
        is then this launch's own (``end`` keeps it). A dir another process holds is left alone."""
        record = self._record()
        if record is None or record.status not in FAILED:
            return
        try:
            with self.claimed():
                (self.dir / METRICS_FILE).unlink(missing_ok=True)
        except DirBusy:
            pass

    def _record(self) -> RunRecord | None:
        """The dir's metrics record, whatever its status; None when it has none it can read."""
        try:
            return read_record(self.dir / METRICS_FILE)
        except (OSError, ValueError):
            return None

    def _taken(self) -> RunRecord | None:
        """The record to return instead of training: the job's own finished one, or (a dir
        holding another job's result) a ``not run`` record, which is not written."""
        if self.finished == REPLACE:
            return None
        other = finished_record(self.dir)
        if other is not None and self.finished == KEEP:
            raise DirTaken(f"{self.dir} holds a finished run (metrics.json, model.pt ...), which is kept; "
                           "give another hydra.run.dir, or remove that one first")
        if other is not None and other.job_key != self.key:
            message = (f"{self.dir} holds a finished job of other settings or data (key {other.job_key}, this one "
                       f"{self.key}); its files are kept. Start a new sweep for these settings")
            self.say(f"not run: {message}")  # the console only: that job's files, its log's too, are kept as they are
            return RunRecord(self.key, "not_run", None, error=message)
        own = self.done()
        if own is not None:
            value = "none" if own.objective is None else f"{float(own.objective):.4f}"
            self.say(f"skipped, finished earlier: {own.status}, objective {value}")  # its log is kept as it is
            self.restored = True
            return own
        if self.store is not None:
            (self.dir / REUSED_FILE).unlink(missing_ok=True)  # this run trains it
            self.replace = self.fresh
            if not self.fresh and (damage := self.store.damage(self.key)) is not None:
                self.tell(f"stored result damaged ({damage}): training it again, and replacing it", logging.WARNING)
                self.replace = True
        return None

    def _train(self, result) -> RunRecord | None:
        from nnexp.plan import prepare
        from nnexp.record import record
        from nnexp.runner import describe, draw_plots, produce, show_plan, show_results
        from nnexp.training.hardware import torch_threads

        with job_syncs_together():  # the dir's files synced together before metrics.json, its folder once after
            plan = prepare(self.cfg, self.key, self.checked)
            with torch_threads(plan.threads):
                if self.cfg.mode != "train":
                    describe(plan, self.console)
                    return None
                if result is None:
                    show_plan(plan, self.console)
                    result = produce(plan, self.console)
                finished = record(plan, result)
        if finished.status == "pruned":  # not a finished result: not stored, and a later sweep trains it whole
            from nnexp.console import plural

            epochs = finished.fit.epochs
            self.tell(f"pruned by Optuna after {epochs:g} {plural(epochs, 'epoch')}, score {finished.objective_value:.4f}")
        elif finished.finished and self.store is not None:
            self.commit()
        if self.cfg.get("plots", True):
            draw_plots(plan, self.console, self.plots_in_background)
        show_results(self.console, self.cfg, finished, plan.output_dir)  # last: the first screen ends with the scores
        if self.log is not None:
            from nnexp.record import log_lines

            self.write_log("\n".join(log_lines(self.cfg, finished, plan.output_dir)))
        if self.cfg.get("sklearn", False):  # scikit-learn's own estimator beside the run, on the same split
            from nnexp.sklearn_beside import fit_beside

            fit_beside(plan, result, self.console)
        return finished

    def commit(self) -> None:
        """Commit the job's result files to the store; a store that cannot be written keeps them in the job dir."""
        try:
            self.store.commit(self.key, self.dir, replace=self.replace)
        except OSError as error:  # a read-only or full store: the job dir keeps the result
            self.tell(f"not stored ({error.strerror}: {error.filename}); its result is in {self.dir}, "
                      f"but later sweeps will train it again: make {self.store.root} writable or set paths.store_dir",
                      logging.WARNING)


def objective_of(record: RunRecord | None) -> float:
    """What a sweeper optimises: the record's objective, NaN when it has none."""
    if record is None or record.objective is None or math.isnan(record.objective):
        return float("nan")
    return float(record.objective)
