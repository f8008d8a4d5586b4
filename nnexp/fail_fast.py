"""``fail_fast=true``: a sweep stops at its first failed job, keeping the jobs that finished.

The stop is a ``BaseException``, like Ctrl-C's KeyboardInterrupt: it must pass the ``except
Exception`` with which launchers and Hydra's callbacks keep one bad job from stopping a sweep.
The entry point (CLI or API) catches it and writes the sweep's summary. A cluster launcher stops
a sweep the same way (its tasks could not start; a task stopped at a failed job).
"""

from __future__ import annotations

from pathlib import Path

from hydra.experimental.callback import Callback

from nnexp.metrics import FAILED
from nnexp.progress import job_outcome, job_record


class SweepStopped(BaseException):
    """A sweep stopped before its end; ``str()`` is the entry point's one line, ``exit_code`` its
    exit status (2: a setting to change, as for a config error)."""

    def __init__(self, sweep_dir: Path, message: str, exit_code: int = 1):
        self.sweep_dir, self.exit_code = Path(sweep_dir), exit_code
        super().__init__(message)


class JobFailed(SweepStopped):
    """``fail_fast``'s stop at ``job``, which ended ``status`` with ``error``; ``cancelled``: what a
    cluster launcher cancelled for it (its tasks still running or queued)."""

    def __init__(self, sweep_dir: Path, job: int, status: str, error: str, cancelled: str = ""):
        self.job, self.status, self.error = job, status, error
        super().__init__(sweep_dir, f"fail_fast=true: the sweep stopped at job {job}, which {status}"
                         + (f" ({error})" if error else "") + (f"; {cancelled}" if cancelled else "")
                         + f"; the jobs that finished are kept in {sweep_dir}")


class FailFast(Callback):
    """Raises ``JobFailed`` after the first failed job of a sweep whose config says ``fail_fast``."""

    def on_job_end(self, config, job_return, **kwargs) -> None:
        if not config.get("fail_fast", False) or str(config.hydra.mode) != "RunMode.MULTIRUN":
            return
        status, _ = job_outcome(config, job_return)
        if status in FAILED:
            record = job_record(config, job_return)
            error = (record.error or "") if record is not None else ""
            raise JobFailed(Path(str(config.hydra.sweep.dir)), int(config.hydra.job.num), status, error)


def stopped_summary(stop: SweepStopped, console=None) -> None:
    """Write the stopped sweep's summary (its figures are left to nnexp-plot)."""
    from nnexp.provenance import write_provenance
    from nnexp.sweeps.summary import summarise

    write_provenance(stop.sweep_dir)
    summarise(stop.sweep_dir, plots=False, console=console)
