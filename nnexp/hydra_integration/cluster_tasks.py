"""A cluster sweep's array task: what it runs (its chunk of jobs, through the batched launcher, in
one process), what it returns, and how the driver reads the end of a task."""

from __future__ import annotations

import logging
import os
import re
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, setup_globals
from omegaconf import DictConfig

from nnexp.fail_fast import JobFailed
from nnexp.hydra_integration.batched_launcher import BatchedLauncher

log = logging.getLogger(__name__)


def in_dir(cwd: str, function, *args):
    """Run ``function(*args)`` in ``cwd`` (a task's: the launcher's working dir)."""
    os.chdir(cwd)
    return function(*args)


class ChunkTask:
    """What one array task runs: its chunk of jobs, through the batched launcher, in one process."""

    def __init__(self, hydra_context, task_function, config: DictConfig, chunk_size: int):
        self.hydra_context, self.task_function, self.config = hydra_context, task_function, config
        self.chunk_size = chunk_size
        self.singleton_state = Singleton.get_state()  # Hydra's plugins and config store, as Hydra's submitit plugin ships them
        self.cwd = os.getcwd()  # the launcher's: a task starts elsewhere (see ClusterLauncher.executor)

    def __call__(self, job_overrides: list[list[str]], numbers: list[int]) -> "dict[int, JobReturn] | ChunkStopped":
        """Run the chunk; return {job number: its return}, without its configs (the driver has
        them), or ``ChunkStopped`` when ``fail_fast`` stopped it at a failed job."""
        os.chdir(self.cwd)
        Singleton.set_state(self.singleton_state)
        setup_globals()
        launcher = BatchedLauncher(self.chunk_size)
        launcher.setup(hydra_context=self.hydra_context, task_function=self.task_function, config=self.config)
        try:
            with time_limit_ends_the_task():
                runs = launcher.launch_numbered(job_overrides, numbers)
        except JobFailed as stop:  # fail_fast: the driver cancels the sweep's other tasks
            return ChunkStopped(stop.job, stop.status, stop.error)
        for run in runs:
            run.cfg = run.hydra_cfg = None
        return dict(zip(numbers, runs))


class TimeLimit(BaseException):
    """SLURM's time-limit warning reached a task: it ends the task, not the job it interrupts (a
    BaseException, so that no job records it as its own failure)."""


@contextmanager
def time_limit_ends_the_task():
    """Inside the block, the time-limit warning (USR2, which submitit's handler turns into an
    error raised wherever the task is: inside a job, which would record it as failed) leaves the
    jobs unrecorded, and then goes to submitit's handler, which ends the task ``timed-out``: the
    driver records its unfinished jobs ``timeout``."""
    submitits = signal.getsignal(signal.SIGUSR2)

    def on_time_limit(signum, frame):
        raise TimeLimit

    signal.signal(signal.SIGUSR2, on_time_limit)
    try:
        yield
    except TimeLimit:
        signal.signal(signal.SIGUSR2, submitits)
        if callable(submitits):
            submitits(signal.SIGUSR2, None)
        raise
    finally:
        signal.signal(signal.SIGUSR2, submitits)


@dataclass
class ChunkStopped:
    """What a task returns when ``fail_fast`` stopped it at job ``job``, which ended ``status``."""

    job: int
    status: str
    error: str


def end_local_tasks(pids: list[int], exit_wait_s: float = 10.0) -> None:
    """Kill local tasks: for each, the shell that runs its set-up (its pid, submitit's job id),
    submitit's controller and the task, tasks first; then wait (up to ``exit_wait_s`` for all)
    until they have exited. submitit's own cancel sends SIGINT to the shell alone, which does not
    pass it on; and a task ignores SIGTERM (submitit bypasses it, as for SLURM's pre-emption
    warning). SIGKILL frees the task's job-dir claims as it dies."""
    import psutil

    killed = []
    for pid in pids:
        try:
            shell = psutil.Process(pid)
            processes = [*reversed(shell.children(recursive=True)), shell]
        except (psutil.NoSuchProcess, psutil.AccessDenied):  # it ended meanwhile
            continue
        for process in processes:
            try:
                process.kill()
                killed.append(process)
            except (psutil.NoSuchProcess, psutil.AccessDenied):  # gone, or no longer ours
                pass
    # SIGKILL is delivered at once, but a process holding torch's threads and memory takes a
    # moment to be torn down: wait, so that when the driver returns its tasks no longer hold
    # cores or memory. Not psutil.wait_procs: a killed shell's zombie may never be reaped in a
    # container whose init does not reap, and a zombie holds nothing once its threads are gone.
    deadline = time.monotonic() + exit_wait_s
    while any(_running(process) for process in killed) and time.monotonic() < deadline:
        time.sleep(0.01)


def _running(process) -> bool:
    """Whether a killed process still runs: not yet a zombie, or a zombie whose other threads are
    still exiting (its main thread turns zombie first, while the rest still hold its memory)."""
    import psutil

    try:
        return process.status() != psutil.STATUS_ZOMBIE or process.num_threads() > 1
    except (psutil.NoSuchProcess, psutil.AccessDenied):  # reaped (its pid may be another's by now)
        return False


def returned_value(task_job):
    """What a finished task returned, or the error it ended with (nothing is logged)."""
    try:
        return task_job.result()
    except Exception as error:  # noqa: BLE001  (submitit re-raises the task's error, whatever it was)
        return error


def task_result(task_job) -> tuple[str | None, dict | ChunkStopped | None]:
    """A finished task's returned job returns (or its ``ChunkStopped``), or (when it ended with an error) the state its
    jobs end with: ``TIMEOUT`` where submitit caught SLURM's time-limit warning (its USR2,
    ``signal_delay_s`` before the limit, raises in whatever the task was doing), else ``FAILED``."""
    try:
        return None, task_job.result()
    except Exception as error:  # noqa: BLE001  (submitit re-raises the task's error, whatever it was)
        logs = "".join(path.read_text(errors="replace") for path in (task_job.paths.stderr, task_job.paths.stdout) if path.is_file())
        timed_out = re.search(r"timed[- ]out|DUE TO TIME LIMIT", f"{error}\n{logs}", re.IGNORECASE)
        log.warning(f"task {task_job.job_id} ended with an error{' (its time limit)' if timed_out else ''}: "
                    f"{str(error).splitlines()[0] if str(error).strip() else type(error).__name__}")
        return ("TIMEOUT" if timed_out else "FAILED"), None
