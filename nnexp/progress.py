"""Live progress where the user is: a rich live display on a terminal, a display that updates in
place in a Jupyter notebook, plain lines in a log or a pipe."""

from __future__ import annotations

from hydra.experimental.callback import Callback
from rich.console import Console
from rich.live import Live
from rich.text import Text

from nnexp.metrics import FAILED
from nnexp.notebook import NotebookLive, has_ipywidgets


class SweepProgress(Callback):
    """A sweep's progress: jobs done of N (Optuna: trials of n_trials; a cluster: tasks pending,
    running and done), elapsed time, ETA, failures so far and the best objective so far. A live
    line on a terminal, an updating output in Jupyter, plain lines in a log or a pipe (at each
    tenth of the sweep, at each failure and at the end). The display is this instance's own: it
    stops at the sweep's end, and a sweeper whose sweep ends in an error stops it (``stop_in``)."""

    def __init__(self, plain_steps: int = 10) -> None:
        self.plain_steps = plain_steps
        self.console: Console | None = None
        self.live: Live | None = None

    def __getstate__(self):
        # A cluster task gets an unstarted copy with the sweep's callbacks: the display is the driver's.
        return {"plain_steps": self.plain_steps, "console": None, "live": None}

    # Hydra's callback events

    def on_multirun_start(self, config, **kwargs) -> None:
        self.start(planned_jobs(config), "trials" if is_optuna(config) else "jobs")

    def on_job_end(self, config, job_return, **kwargs) -> None:
        if self.console is None:  # a single run: no sweep display
            return
        status, objective = job_outcome(config, job_return)
        self.job_done(int(config.hydra.job.num), status, objective, earlier=getattr(job_return, "restored", False))

    def on_multirun_end(self, config, **kwargs) -> None:
        # the last count, once; none where this process saw no job end (joblib's workers run them)
        if self.console is not None and self.plain and self.done > self.earlier and self._printed != self.done:
            self.console.print(f"progress: {self.line()}", soft_wrap=True)
        self.stop()

    # The display

    def start(self, total: int | None, unit: str = "jobs", console: Console | None = None) -> None:
        import time

        self.total, self.unit, self.done, self.failed = total, unit, 0, 0
        self.best: tuple[float, int] | None = None
        self.earlier = 0  # jobs that ended before this launch (a study's trials): no part of its rate
        self._printed: int | None = None
        self.tasks_line = ""
        self.started = time.monotonic()
        self.console = console or Console(highlight=False)
        self._next_plain = 1
        self.plain = not (self.console.is_terminal or self.console.is_jupyter)  # lines, not a live display
        if not self.plain:
            live_class = NotebookLive if self.console.is_jupyter and not has_ipywidgets() else Live
            redirect = live_class is Live  # job lines print above the live line
            self.live = live_class(console=self.console, refresh_per_second=4, get_renderable=lambda: Text(self.line()),
                                   redirect_stdout=redirect, redirect_stderr=redirect)
            self.live.start()

    def job_done(self, number: int, status: str, objective: float | None, earlier: bool = False) -> None:
        """One job ended, with its status and objective; ``earlier``: its result finished before this
        launch (a resumed sweep's stored job), which counts but is no part of this launch's rate."""
        import math

        self.done += 1
        self.earlier += earlier
        if status in FAILED:
            self.failed += 1
        # nnexp's objective is a score: summary.csv ranks the highest first, and so does this line
        if objective is not None and math.isfinite(objective) and (self.best is None or objective > self.best[0]):
            self.best = (objective, number)
        if self.live is None and self.console is not None:
            step = max(1, (self.total or 0) // self.plain_steps)
            if status in FAILED or self.done >= self._next_plain or self.done == self.total:
                self.console.print(f"progress: {self.line()}", soft_wrap=True)
                self._next_plain, self._printed = self.done + step, self.done
        if self.total is not None and self.done >= self.total:
            self.stop()  # before the summary prints

    def count_earlier(self, done: int, best: tuple[float, int] | None) -> None:
        """Jobs that ended before this launch (a study's trials, which a relaunch tops up to
        n_trials) and the best of them: the count goes on from them."""
        if self.console is None:
            return
        self.done = self.earlier = done
        self._next_plain = done + 1
        if best is not None and (self.best is None or best[0] > self.best[0]):
            self.best = best

    def tasks(self, pending: int, running: int, done: int) -> None:
        """A cluster sweep's tasks by state (its jobs end in other processes)."""
        text = f"tasks: {pending} pending, {running} running, {done} done"
        if text != self.tasks_line:
            self.tasks_line = text
            if self.live is None and self.console is not None:
                self.console.print(f"progress: {self.line()}", soft_wrap=True)

    def line(self) -> str:
        """The progress as one line of text."""
        import time
        from datetime import timedelta

        elapsed = time.monotonic() - self.started
        parts = [f"{self.done}/{self.total} {self.unit}" if self.total else f"{self.done} {self.unit} done"]
        if self.tasks_line:
            parts.append(self.tasks_line)
        parts.append(f"{timedelta(seconds=round(elapsed))} elapsed")
        ran = self.done - self.earlier  # this launch's jobs: its rate
        if self.total and ran > 0 and self.done < self.total:
            parts.append(f"ETA {timedelta(seconds=round(elapsed / ran * (self.total - self.done)))}")
        parts.append(f"{self.failed} failed")
        if self.best is not None:
            parts.append(f"best {self.best[0]:.4f} (job {self.best[1]})")
        return "sweep: " + ", ".join(parts)

    def stop(self) -> None:
        if self.live is not None:
            live, self.live = self.live, None
            live.stop()


def stop_in(hydra_context) -> None:
    """Stop the sweep's live display, if it has one: a sweeper's clean-up when its sweep ends in
    an error (Ctrl-C, a stopped sweep), before the entry point prints what was kept; a live line
    left running would keep the terminal's cursor hidden and its output redirected."""
    progress = find(hydra_context)
    if progress is not None:
        progress.stop()


def find(hydra_context) -> SweepProgress | None:
    """The sweep's progress display among its Hydra callbacks (for a launcher's task counts)."""
    callbacks = getattr(getattr(hydra_context, "callbacks", None), "callbacks", None) or []
    return next((callback for callback in callbacks if isinstance(callback, SweepProgress)), None)


def is_optuna(config) -> bool:
    return str(config.hydra.sweeper.get("_target_", "")).endswith("OptunaSweeper")


def planned_jobs(config) -> int | None:
    """How many jobs the sweep will run: its grid's size, or Optuna's n_trials; None when unknown."""
    sweeper = config.hydra.sweeper
    if is_optuna(config):
        return int(sweeper.n_trials)
    from nnexp.sweeps.grid import GRID_SWEEPERS, grid

    if not str(sweeper.get("_target_", "")).endswith(GRID_SWEEPERS):
        return None
    from hydra.core.override_parser.overrides_parser import OverridesParser

    lines = [f"{key}={value}" for key, value in (sweeper.get("params") or {}).items()] + list(config.hydra.overrides.task)
    try:
        return len(grid(OverridesParser.create().parse_overrides(lines)))
    except Exception:  # the sweeper reports a bad sweep itself
        return None


def job_record(config, job_return):
    """A finished job's RunRecord: the one its launcher hands over in memory, else (a job another
    process ran: joblib, Hydra's basic launcher) its metrics.json; None when it has neither."""
    record = getattr(job_return, "record", None)
    if record is not None:
        return record
    from pathlib import Path

    from nnexp.metrics import read_record
    from nnexp.results import METRICS_FILE

    try:
        return read_record(Path(str(config.hydra.runtime.output_dir)) / METRICS_FILE)
    except (OSError, ValueError):
        return None


def job_outcome(config, job_return) -> tuple[str, float | None]:
    """A finished job's status and objective."""
    record = job_record(config, job_return)
    if record is None:
        return ("ok" if job_return.status.name == "COMPLETED" and job_return.return_value is not None else "failed"), None
    return record.status, record.objective
