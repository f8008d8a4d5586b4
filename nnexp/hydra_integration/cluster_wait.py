"""The driver's wait for a cluster sweep's tasks, and the halts for which it cancels them before
they end: ``fail_fast`` (a task stopped at a failed job, or died), and a task that cannot start
(PENDING for a request no node meets, or for longer than ``pending_timeout_s`` on a busy cluster)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from nnexp.fail_fast import JobFailed, SweepStopped
from nnexp.hydra_integration.cluster_tasks import ChunkStopped, end_local_tasks, returned_value

log = logging.getLogger(__name__)


@dataclass
class Halt:
    """Why the driver cancelled the sweep's tasks before they ended: ``why`` goes into each
    cancelled job's error; ``stop`` makes the sweep's stop once their jobs are recorded."""

    why: str
    stop: Callable[[Path, list[int]], SweepStopped]
    tasks: set[str] = field(default_factory=set)  # the tasks that ended once cancelled


class TaskWait:
    """Waits for ``launcher``'s submitted tasks (``launcher.cluster``: slurm or local)."""

    def __init__(self, launcher) -> None:
        self.launcher = launcher

    def run(self, tasks: list, arrays: list[str]) -> tuple[dict[str, str], Halt | None]:
        """Wait for every task; return {task id: SLURM state} of those that ended without a
        result, and the ``Halt`` for which the driver cancelled the sweep's tasks (None when it
        did not): ``fail_fast``, when a task stopped at a failed job, or a task PENDING for a
        request the cluster cannot start, or for longer than ``pending_timeout_s``. A task pending
        behind the sweep's own tasks waits for their slots: the pending clock runs only while none
        of them runs or ends."""
        from nnexp.hydra_integration import slurm
        from nnexp.progress import find

        progress = find(getattr(self.launcher, "hydra_context", None))
        progress_at, ended, halt = time.monotonic(), {}, None
        unseen: dict[str, int] = {}  # polls a task has been out of the queue without a result
        waiting = list(tasks)
        while waiting:
            queue = {}
            if self.launcher.cluster == "slurm":
                for array in arrays:
                    queue.update(slurm.queue_states(array))
            if any(state != "PENDING" for state, _ in queue.values()):
                progress_at = time.monotonic()  # the sweep's own tasks hold the slots the pending ones wait for
            for job in list(waiting):
                if job.paths.result_pickle.exists():
                    waiting.remove(job)
                    progress_at = time.monotonic()
                    returned = returned_value(job)
                    if halt is None and isinstance(returned, ChunkStopped):
                        halt = self.fail_fast_halt(returned, job.job_id)
                        self.cancel(arrays, waiting)
                    elif halt is not None and isinstance(returned, BaseException):  # it ended as it was cancelled
                        ended[job.job_id] = "CANCELLED"
                        halt.tasks.add(job.job_id)
                    continue
                if self.launcher.cluster == "local":
                    if job.done():
                        waiting.remove(job)
                        halt = self.dead(job, "CANCELLED" if job.state in ("INTERRUPTED", "CANCELLED") else "FAILED",
                                         ended, halt, arrays, waiting)
                    continue
                if job.job_id in queue:
                    state, reason = queue[job.job_id]
                    stuck = time.monotonic() - progress_at
                    if halt is None and state == "PENDING" and (slurm.hopeless_key(reason) or stuck > self.launcher.pending_timeout_s):
                        halt = self.pending_halt(job.job_id, reason, stuck, arrays)
                        self.cancel(arrays, waiting)
                    continue
                # Out of the queue without a result: give the file system a few polls to show it.
                unseen[job.job_id] = unseen.get(job.job_id, 0) + 1
                if unseen[job.job_id] >= 3:
                    waiting.remove(job)
                    progress_at = time.monotonic()
                    state = "CANCELLED" if halt else slurm.ended_state(job.job_id, job.paths.stderr)
                    halt = self.dead(job, state, ended, halt, arrays, waiting)
            if progress is not None:  # the sweep's live line: tasks by state
                pending = sum(queue.get(job.job_id, ("",))[0] == "PENDING" for job in waiting)
                progress.tasks(pending, len(waiting) - pending, len(tasks) - len(waiting))
            if waiting:
                time.sleep(self.launcher.poll_s)
        return ended, halt

    def dead(self, job, state: str, ended: dict[str, str], halt: Halt | None, arrays: list[str], waiting: list) -> Halt | None:
        """Task ``job`` ended without a result, in SLURM ``state``: note it in ``ended``; return
        the halt, which ``fail_fast`` starts here (its jobs did not finish: the others are cancelled)."""
        if halt is not None:
            ended[job.job_id] = "CANCELLED"
            halt.tasks.add(job.job_id)
            return halt
        ended[job.job_id] = state
        config = getattr(self.launcher, "config", None)  # a refit's launcher has no sweep config
        if config is None or not config.get("fail_fast", False):
            return None
        halt = self.dead_task_halt(job.job_id, state)
        self.cancel(arrays, waiting)
        return halt

    def cancel(self, arrays: list[str], waiting: list) -> None:
        """Cancel the sweep's tasks that have not ended: its arrays on SLURM, each process locally."""
        from nnexp.hydra_integration import slurm

        if self.launcher.cluster == "slurm":
            slurm.cancel(arrays)
        else:
            end_local_tasks([int(job.job_id) for job in waiting])
        log.warning(f"cancelled {self.launcher.cluster} array {', '.join(arrays)}")

    def fail_fast_halt(self, stopped: ChunkStopped, task_id: str) -> Halt:
        """``fail_fast``: task ``task_id`` stopped at a failed job; the sweep's other tasks are cancelled."""
        why = f"cancelled by fail_fast=true (job {stopped.job} {stopped.status})"

        def stop(sweep_dir: Path, cancelled: list[int]) -> SweepStopped:
            return JobFailed(sweep_dir, stopped.job, stopped.status, stopped.error, self.cancelled_line(cancelled))

        log.warning(f"fail_fast=true: job {stopped.job} {stopped.status} in task {task_id}; cancelling the sweep's other tasks")
        return Halt(why, stop)

    def dead_task_halt(self, task_id: str, state: str) -> Halt:
        """``fail_fast``: task ``task_id`` ended ``state`` before its jobs finished; the others are cancelled."""
        why = f"cancelled by fail_fast=true ({self.launcher.cluster} task {task_id} ended {state})"

        def stop(sweep_dir: Path, cancelled: list[int]) -> SweepStopped:
            return SweepStopped(sweep_dir, f"fail_fast=true: the sweep stopped: its {self.launcher.cluster} task {task_id} ended {state} "
                                f"before its jobs finished; {self.cancelled_line(cancelled)}; the jobs that finished are "
                                f"kept in {sweep_dir}")

        log.warning(f"fail_fast=true: task {task_id} ended {state}; cancelling the sweep's other tasks")
        return Halt(why, stop)

    def cancelled_line(self, cancelled: list[int]) -> str:
        """What a fail_fast stop cancelled, for its one line."""
        if not cancelled:
            return f"no other {self.launcher.cluster} task was left to cancel"
        jobs = f"job {cancelled[0]} is" if len(cancelled) == 1 else f"jobs {', '.join(map(str, cancelled))} are"
        return f"fail_fast cancelled the sweep's other {self.launcher.cluster} tasks: {jobs} recorded cancelled"

    def pending_halt(self, task_id: str, reason: str, stuck: float, arrays: list[str]) -> Halt:
        """A task PENDING for a request no node will start (its reason names the setting to
        change: exit 2, as for a config error), or, on a busy cluster, for longer than
        ``pending_timeout_s`` (no setting is to blame: wait longer, or relaunch later)."""
        from nnexp.hydra_integration import slurm

        key = slurm.hopeless_key(reason)
        waited = f"task {task_id} was still PENDING ({reason}) after {stuck:.0f} s"
        if key is not None:
            line = (f"hydra.launcher.{key}={getattr(self.launcher, key, None)!r} is not allowed: a request the cluster can start: "
                    f"{waited}, and SLURM does not start it unless hydra.launcher.{key} changes")
        else:
            line = (f"the cluster is busy: {waited} behind other jobs (hydra.launcher.pending_timeout_s="
                    f"{self.launcher.pending_timeout_s:g}); relaunch later, or wait longer with a larger hydra.launcher.pending_timeout_s")

        def stop(sweep_dir: Path, cancelled: list[int]) -> SweepStopped:
            return SweepStopped(sweep_dir, f"{line}; array {', '.join(arrays)} was cancelled ({len(cancelled)} jobs recorded "
                                f"cancelled); the jobs that finished are kept in {sweep_dir} (nnexp resume={sweep_dir} "
                                "runs the rest)", exit_code=2 if key is not None else 1)

        return Halt(f"cancelled: {waited}", stop)
