"""``fail_fast=true``: a sweep stops at its first failed job, keeping the jobs that finished.

The stop is a ``BaseException``, like Ctrl-C's KeyboardInterrupt: it must pass the ``except
Exception`` with which launchers and Hydra's callbacks keep one bad job from stopping a sweep.
The entry point (CLI or API) catches it and writes the sweep's summary.
"""

from __future__ import annotations

from pathlib import Path

from hydra.experimental.callback import Callback

from nnexp.progress import job_outcome, job_record

FAILED = ("failed", "oom", "timeout", "cancelled", "lost")  # a job that did not train to its end


class SweepStopped(BaseException):
    """A sweep stopped by ``fail_fast`` at a failed job."""

    def __init__(self, sweep_dir: Path, job: int, status: str, error: str):
        self.sweep_dir, self.job, self.status, self.error = Path(sweep_dir), job, status, error
        super().__init__(f"fail_fast=true: the sweep stopped at job {job}, which {status}"
                         + (f" ({error})" if error else "") + f"; the jobs that finished are kept in {sweep_dir}")


class FailFast(Callback):
    """Raises ``SweepStopped`` after the first failed job of a sweep whose config says ``fail_fast``."""

    def on_job_end(self, config, job_return, **kwargs) -> None:
        if not config.get("fail_fast", False) or str(config.hydra.mode) != "RunMode.MULTIRUN":
            return
        status, _ = job_outcome(config, job_return)
        if status in FAILED:
            record = job_record(config, job_return)
            error = (record.error or "") if record is not None else ""
            raise SweepStopped(Path(str(config.hydra.sweep.dir)), int(config.hydra.job.num), status, error)


def stopped_summary(stop: SweepStopped, console=None) -> None:
    """Write the stopped sweep's summary (its figures are left to nnexp-plot)."""
    from nnexp.provenance import write_provenance
    from nnexp.sweeps.summary import summarise

    write_provenance(stop.sweep_dir)
    summarise(stop.sweep_dir, plots=False, console=console)
