"""The cluster launcher: a sweep's jobs packed into SLURM array tasks (or local processes) with
submitit. Each task imports once and runs its chunk through the batched launcher: batchable jobs
train together as stacks, the rest one after another, and each job is recorded into its job dir
and the shared store as soon as it finishes, so a task that dies keeps what it finished."""

from __future__ import annotations

import logging
import math
import os
import shlex
import signal
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from nnexp.errors import ConfigError
from nnexp.fail_fast import SweepStopped
from nnexp.hydra_integration.batched_launcher import BatchedLauncher
from nnexp.hydra_integration.cluster_tasks import ChunkStopped, ChunkTask, in_dir, task_result
from nnexp.hydra_integration.cluster_wait import TaskWait

log = logging.getLogger(__name__)
ARRAYS_FILE = "arrays.txt"  # in the submitit folder: the array ids this sweep dir submitted


def positive_whole(value) -> int | None:
    """``value`` as a whole number of at least 1 (an int, a whole float, digits in a string from
    an environment variable), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and value >= 1 else None


def positive_seconds(value) -> float | None:
    """``value`` as a positive number of seconds (``inf`` included), or None."""
    if isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if seconds > 0 else None  # NaN is not


class ClusterLauncher(BatchedLauncher):
    """``launcher=slurm`` / ``launcher=submitit_local``: chunks of ``jobs_per_task`` jobs, one
    array task each (null: the pending jobs spread evenly over ``max_tasks`` tasks, by default
    the cores of the partition, or of this machine, divided by ``cpus_per_task``). Jobs already
    finished (in their job dir or the store) are restored here and never reach the cluster."""

    def __init__(self, cluster: str = "slurm", jobs_per_task: int | None = None, max_tasks: int | None = None,
                 chunk_size: int = 40, timeout_min: int = 60, cpus_per_task: int | str = 1, mem_gb: float | str | None = "auto",
                 gpus_per_node: int | None = None, partition: str | None = None, pending_timeout_s: float = 300,
                 poll_s: float = 1.0, additional_parameters: dict | None = None, refit_on_cluster: bool = True) -> None:
        super().__init__(chunk_size)
        if cluster not in ("slurm", "local"):
            raise ConfigError("hydra.launcher.cluster", cluster, "slurm or local")
        for key, value in (("jobs_per_task", jobs_per_task), ("max_tasks", max_tasks)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"hydra.launcher.{key}", value, "a positive whole number, or null to derive it")
        self.cluster, self.jobs_per_task, self.max_tasks = cluster, jobs_per_task, max_tasks
        if cpus_per_task in (None, "auto"):  # threads=auto: one thread for a small MLP's steps
            cpus_per_task = 1
        if not str(cpus_per_task).isdigit() or int(cpus_per_task) < 1:
            raise ConfigError("hydra.launcher.cpus_per_task", cpus_per_task, "a positive whole number (the threads each job uses)")
        if mem_gb not in (None, "auto") and (isinstance(mem_gb, bool) or not isinstance(mem_gb, (int, float)) or mem_gb <= 0):
            raise ConfigError("hydra.launcher.mem_gb", mem_gb, "a positive number of GB, or auto (sized from the data)")
        minutes = positive_whole(timeout_min)
        if minutes is None:
            raise ConfigError("hydra.launcher.timeout_min", timeout_min, "a positive whole number of minutes (each task's time limit)")
        seconds = {key: positive_seconds(value) for key, value in (("pending_timeout_s", pending_timeout_s), ("poll_s", poll_s))}
        for key, value in (("pending_timeout_s", pending_timeout_s), ("poll_s", poll_s)):
            if seconds[key] is None:
                raise ConfigError(f"hydra.launcher.{key}", value, "a positive number of seconds" + (
                    " (.inf in a file, inf on the command line: wait for ever)" if key == "pending_timeout_s" else ""))
        self.timeout_min, self.cpus_per_task, self.mem_gb = minutes, int(cpus_per_task), mem_gb
        self.gpus_per_node, self.partition = gpus_per_node, partition
        self.pending_timeout_s, self.poll_s = seconds["pending_timeout_s"], seconds["poll_s"]
        self.additional_parameters = dict(additional_parameters or {})
        self.refit_on_cluster = bool(refit_on_cluster)

    # -- planning ----------------------------------------------------------------------------

    def task_slots(self) -> int:
        """How many tasks can run at once: the partition's (or this machine's) cores per task."""
        if self.max_tasks:
            return self.max_tasks
        if self.cluster == "slurm":
            from nnexp.hydra_integration.slurm import partition_nodes

            cores = sum(node.cpus for node in partition_nodes(self.partition)) or 1
        else:
            cores = os.cpu_count() or 1
        return max(1, cores // max(1, self.cpus_per_task))

    def chunks(self, pending: list[int]) -> list[list[int]]:
        """The pending jobs' positions, in chunks of ``jobs_per_task`` (or spread over the task slots)."""
        if not pending:
            return []
        size = self.jobs_per_task or math.ceil(len(pending) / self.task_slots())
        return [pending[start : start + size] for start in range(0, len(pending), size)]

    @staticmethod
    def memory_for(config: DictConfig) -> int:
        """``mem_gb=auto``: GB a task needs for a job of ``config``: Python with torch and Lightning
        (about 1.5 GB resident), plus four times the data (the raw arrays, the scaled tensors,
        a fold's copies), rounded up."""
        from nnexp.hydra_integration.sweep_job import task_config
        from nnexp.config import is_training_config
        from nnexp.data.loading import load_data

        task = task_config(config)
        if not is_training_config(task):
            return 4
        bundle = load_data(task.data)
        data_bytes = sum(array.nbytes for array in (bundle.X_train, bundle.y_train, bundle.X_test, bundle.y_test))
        return max(2, math.ceil(1.5 + 4 * data_bytes / 2**30))

    def finished_here(self, config: DictConfig) -> bool:
        """Whether a job's result is in its job dir or the store already (``Job.done``, which
        restores it from the store here, on the submit host). A job that goes to the cluster
        loses an earlier launch's record of its failure (``Job.forget_ended``): a dead task's
        jobs then keep only what this launch recorded."""
        from nnexp.config import is_training_config
        from nnexp.hydra_integration.sweep_job import job_dir, sweep_job, task_config

        task = task_config(config)
        if not is_training_config(task):
            return False
        job = sweep_job(task, config.hydra, job_dir(config))
        if not task.get("fresh", False) and job.done() is not None:
            return True
        job.forget_ended()
        return False

    # -- launching ---------------------------------------------------------------------------

    def launch_numbered(self, job_overrides: Sequence[Sequence[str]], numbers: list[int]) -> Sequence[JobReturn]:
        """Launch jobs numbered ``numbers`` as array tasks (Optuna's trials need not be contiguous:
        every trial of a batch still packs into the same tasks)."""
        self.start()
        configs = [self.number(self.job_config(list(overrides)), idx) for overrides, idx in zip(job_overrides, numbers)]
        stored = [position for position, config in enumerate(configs) if self.finished_here(config)]
        returns: dict[int, JobReturn] = {}
        if stored:  # restored on the submit host: they never reach the cluster
            log.info(f"{len(stored)} of {len(configs)} jobs finished earlier: restored from the store, not submitted")
            for position, ret in zip(stored, super().launch_numbered([job_overrides[p] for p in stored], [numbers[p] for p in stored])):
                returns[position] = ret
        pending = [position for position in range(len(configs)) if position not in returns]
        chunks = self.chunks(pending)
        if chunks:
            if self.mem_gb == "auto":
                self.mem_gb = max(self.memory_for(configs[position]) for position in {chunk[0] for chunk in chunks})
                log.info(f"each task asks for {self.cpus_per_task} CPUs and {self.mem_gb} GB (hydra.launcher.mem_gb=auto: sized from the data)")
            records = self.submit_and_wait(chunks, job_overrides, numbers)
            for position in pending:
                returns[position] = self.job_return(configs[position], list(job_overrides[position]), records.get(numbers[position]))
        return [returns[position] for position in range(len(configs))]

    def executor(self, folder: Path, name: str | None = None):
        import submitit

        from nnexp.hydra_integration.slurm import task_python, warning_delay_s

        python = {"slurm_python": task_python()} if self.cluster == "slurm" else {}
        executor = submitit.AutoExecutor(folder=str(folder / "%j"), cluster=self.cluster, **python)
        parameters = dict(timeout_min=self.timeout_min, cpus_per_task=self.cpus_per_task, nodes=1, tasks_per_node=1,
                          name=name or str(self.config.hydra.job.name))
        if self.mem_gb:  # auto is resolved from the data before a sweep's tasks; a refit task asks for 4 GB
            parameters["mem_gb"] = self.mem_gb if isinstance(self.mem_gb, (int, float)) else 4
        if self.gpus_per_node:
            parameters["gpus_per_node"] = self.gpus_per_node
        if self.cluster == "slurm":
            if self.partition:
                parameters["slurm_partition"] = self.partition
            if self.additional_parameters:
                parameters["slurm_additional_parameters"] = self.additional_parameters
            # SLURM sends the time-limit warning (USR2) this long before the limit; submitit's 90 s
            # default is the whole of a short limit.
            parameters["slurm_signal_delay_s"] = warning_delay_s(self.timeout_min)
        # A task's Python starts in the submitit folder, not in the submit dir: `python -m` puts its
        # start dir first on sys.path, and a source checkout there (nnexp/ without its configs)
        # would shadow the installed nnexp the launcher runs. Tasks chdir back (ChunkTask, in_dir).
        parameters[f"{self.cluster}_setup"] = [f"cd {shlex.quote(str(folder.resolve()))}"]
        executor.update_parameters(**parameters)
        return executor

    def submit_and_wait(self, chunks: list[list[int]], job_overrides, numbers: list[int]) -> dict[int, JobReturn]:
        """Submit one array task per chunk, wait until every task has ended, and record the jobs
        of a task that died without finishing them (its SLURM state in their ``error``); return
        {job number: its return}, as its task returned it or as recorded here. Where the driver
        cancelled the tasks (``fail_fast``, tasks that could not start), their jobs are recorded
        ``cancelled`` and the sweep stops (``SweepStopped``: the entry point writes its summary)."""
        from nnexp.hydra_integration import slurm

        if self.cluster == "slurm":
            slurm.check_request(self.partition, self.cpus_per_task, self.mem_gb, self.gpus_per_node, self.timeout_min)
        folder = Path(str(self.config.hydra.sweep.dir)) / ".submitit"
        folder.mkdir(parents=True, exist_ok=True)
        self.cancel_left_over(folder)
        task = ChunkTask(self.hydra_context, self.task_function, self.config, self.chunk_size)
        for chunk in chunks:
            log.info(f"\ttask: jobs {', '.join(str(numbers[p]) for p in chunk)}")
        tasks = self.executor(folder).map_array(task, [[list(job_overrides[p]) for p in chunk] for chunk in chunks],
                                                [[numbers[p] for p in chunk] for chunk in chunks])
        arrays = sorted({job.job_id.split("_")[0] for job in tasks})
        with open(folder / ARRAYS_FILE, "a") as record:
            record.writelines(f"{array}\n" for array in arrays)
        log.info(f"Submitted {len(tasks)} {self.cluster} tasks for {sum(map(len, chunks))} jobs (array {', '.join(arrays)})")
        with self.cancelled_on_signal(arrays, tasks):
            ended, halt = TaskWait(self).run(tasks, arrays)
        literal = folder / "%j"  # made by submitit from its folder pattern; the tasks' folders are named by id
        if literal.is_dir() and not any(literal.iterdir()):
            literal.rmdir()
        records: dict[int, JobReturn] = {}
        cancelled: list[int] = []  # jobs the halt cancelled
        stops: list[SweepStopped] = []  # fail_fast's, at a dead task's job (raised once every job is recorded)
        for task_job, chunk in zip(tasks, chunks):
            chunk_numbers, overrides = [numbers[p] for p in chunk], [job_overrides[p] for p in chunk]
            state = ended.get(task_job.job_id)
            if state is None:
                state, returned = task_result(task_job)
                if isinstance(returned, ChunkStopped):  # its failed job keeps its record; the rest are cancelled
                    kept = [position for position, number in enumerate(chunk_numbers) if number != returned.job]
                    chunk_numbers, overrides, state = [chunk_numbers[p] for p in kept], [overrides[p] for p in kept], "CANCELLED"
                    halt.tasks.add(task_job.job_id)
                else:
                    records.update(returned or {})
            if state is None:
                continue
            halted = halt is not None and task_job.job_id in halt.tasks
            error = (f"{halt.why}; its {self.cluster} task {task_job.job_id} was cancelled before this job finished" if halted
                     else f"{self.cluster} task {task_job.job_id} ended {state} before this job finished")
            dead, stop = self.record_dead(chunk_numbers, overrides, task_job.job_id, slurm.job_status(state), error)
            records.update(dead)
            stops += [stop] if stop is not None else []
            if halted:
                cancelled += [number for number, ret in dead.items() if getattr(ret, "record", None) is not None
                              and ret.record.status == "cancelled"]
        if halt is not None:
            raise halt.stop(Path(str(self.config.hydra.sweep.dir)), sorted(cancelled))
        if stops:
            raise stops[0]
        return records

    @contextmanager
    def cancelled_on_signal(self, arrays: list[str], tasks: list):
        """SIGTERM (as SIGINT) while waiting cancels the sweep's tasks before the driver exits: its
        arrays on SLURM, each task's processes locally (they would train on, unwatched)."""
        from nnexp.hydra_integration import slurm
        from nnexp.hydra_integration.cluster_tasks import end_local_tasks

        def on_term(signum, frame):
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, on_term)
        try:
            yield
        except KeyboardInterrupt:
            if self.cluster == "slurm":
                slurm.cancel(arrays)
            else:
                # only running ones: an ended task's pid may be another process's by now
                end_local_tasks([int(task.job_id) for task in tasks if not task.done()])
            log.warning(f"cancelled {'array' if self.cluster == 'slurm' else 'local tasks'} {', '.join(arrays)}")
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)

    def cancel_left_over(self, folder: Path) -> None:
        """Cancel tasks that an earlier driver of this sweep dir left queued (killed with SIGKILL)."""
        if self.cluster != "slurm" or not (folder / ARRAYS_FILE).is_file():
            return
        from nnexp.hydra_integration import slurm

        arrays = (folder / ARRAYS_FILE).read_text().split()
        if any(slurm.queue_states(array) for array in arrays):
            log.warning(f"cancelling tasks an earlier launch into this sweep dir left queued (array {', '.join(arrays)})")
            slurm.cancel(arrays)
        (folder / ARRAYS_FILE).unlink()

    def record_dead(self, numbers: list[int], job_overrides, task_id: str, status: str,
                    error: str) -> tuple[dict[int, JobReturn], SweepStopped | None]:
        """The jobs of a dead task that have no finished result are recorded with ``status``
        (``timeout``, ``cancelled``, ``lost``) and ``error`` (its SLURM state, or why the driver
        cancelled it), with their job dirs as Hydra makes them (the summary lists them with their
        error): each through its ``Job``, which claims its dir first (a job still running
        elsewhere is left alone). Also returns ``fail_fast``'s stop at the first of them (raised by
        the driver's callback: every job is recorded before it is raised)."""
        from nnexp.claims import DirBusy
        from nnexp.config import is_training_config
        from nnexp.hydra_integration.job_record import hydra_job
        from nnexp.hydra_integration.sweep_job import job_dir, sweep_job, task_config
        from nnexp.job import objective_of

        records, first_stop = {}, None
        for number, overrides in zip(numbers, job_overrides):
            config = self.number(self.job_config(list(overrides)), number)
            if not is_training_config(task_config(config)):  # another app's job: its sweeper sees the failure
                records[number] = JobReturn(overrides=list(overrides), working_dir=os.getcwd(), status=JobStatus.FAILED,
                                            _return_value=RuntimeError(error))
                continue
            job = sweep_job(task_config(config), config.hydra, job_dir(config))
            for attempt in range(2):
                try:
                    with job.claimed(), hydra_job(config, job.cfg, self.hydra_context, self.task_function) as ended:
                        ended.record = job.end(status, error)
                        ended.return_value = objective_of(ended.record)
                except DirBusy as busy:  # its task (or another) still writes there
                    if attempt == 0 and holder_ended(busy.holder):
                        continue  # the dead task's process, still exiting: its claim is free now
                    job.say(f"not recorded: {busy}")
                    break
                except SweepStopped as stop:  # fail_fast's, at this job's end: the next jobs are recorded first
                    first_stop = first_stop or stop
                records[number] = ended
                break
        return records, first_stop

    def job_return(self, config: DictConfig, overrides: list[str], returned: JobReturn | None) -> JobReturn:
        """The job's return for the sweeper, as its task returned it (or the driver recorded it
        for a dead task), with the job's record in memory; its configs are the driver's."""
        from nnexp.hydra_integration.job_record import RecordedReturn
        from nnexp.hydra_integration.sweep_job import task_config

        if returned is None:  # no task returned it, and its dir was busy
            returned = RecordedReturn(overrides=overrides, working_dir=os.getcwd(), task_name=str(config.hydra.job.name),
                                      status=JobStatus.COMPLETED)
            returned.return_value = float("nan")
        if OmegaConf.is_missing(config.hydra.runtime, "output_dir"):  # set in the task's process, as run_job does there
            with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
                config.hydra.runtime.output_dir = os.path.abspath(Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir))
        returned.cfg, returned.hydra_cfg = task_config(config), config
        return returned


def holder_ended(holder: dict, wait_s: float = 60.0) -> bool:
    """Whether a claim's holder on this host has ended, waiting up to ``wait_s`` for it: a task
    killed with its controller (SIGKILL of the whole tree) is seen dead before its own process
    has finished exiting, and the kernel frees its claims only at the end of that exit."""
    import psutil

    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    try:
        psutil.Process(holder["pid"]).wait(timeout=wait_s)
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:  # a live process holds it: not the dead task's
        return False
    return True


def cluster_refit(launcher_config: DictConfig, sweep_dir: Path):
    """A refit runner for ``summarise``: the best job's refit as one more task of the sweep's
    cluster (``hydra.launcher.refit_on_cluster``), with the sweep's task settings (the
    ClusterLauncher config the sweep ran with); None when the refit runs on the submit host."""
    from hydra.utils import instantiate

    launcher = instantiate(launcher_config)
    if not launcher.refit_on_cluster:
        return None

    def refit(job_dir: Path, output_dir: Path, batched: bool = False):
        from nnexp.errors import NnexpError
        from nnexp.sweeps.refit import refit_best, refit_job

        if (finished := refit_job(job_dir, output_dir).done()) is not None:
            return finished  # a relaunch of a finished sweep submits nothing

        folder = Path(sweep_dir) / ".submitit"
        folder.mkdir(parents=True, exist_ok=True)
        task = launcher.executor(folder, name="refit").submit(in_dir, os.getcwd(), refit_best, job_dir, output_dir, batched)
        arrays = [task.job_id.split("_")[0]]
        with launcher.cancelled_on_signal(arrays, [task]):
            ended, halt = TaskWait(launcher).run([task], arrays)
        if halt is not None:  # its task could not start: one line, and the sweep's summary stands
            raise NnexpError(str(halt.stop(Path(sweep_dir), [])))
        if task.job_id in ended:
            raise NnexpError(f"the refit's {launcher.cluster} task {task.job_id} ended {ended[task.job_id]}; "
                             f"its log: {task.paths.stderr}")
        print(f"refit ran as {launcher.cluster} task {task.job_id}")
        return task.result()

    return refit
