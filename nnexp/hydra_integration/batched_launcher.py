"""The batched launcher: a sweep's batchable jobs train together as stacks, and each job is
recorded as soon as its fits are trained; the other jobs run in-process as usual."""

from __future__ import annotations

import logging
from typing import Sequence

from hydra.core.utils import JobReturn

from nnexp.config import is_training_config
from nnexp.hydra_integration.launcher import InProcessLauncher
from nnexp.hydra_integration.sweep_job import job_dir, sweep_job, task_config

log = logging.getLogger(__name__)


class BatchedLauncher(InProcessLauncher):
    """Trains the sweep's batchable jobs together, stack by stack (``nnexp.batched``), at most
    ``chunk_size`` members at a time, and records each job with its result."""

    def __init__(self, chunk_size: int = 40) -> None:
        super().__init__()
        self.chunk_size = int(chunk_size)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        return self.launch_numbered(job_overrides, list(range(initial_job_idx, initial_job_idx + len(job_overrides))))

    def launch_numbered(self, job_overrides: Sequence[Sequence[str]], numbers: list[int]) -> Sequence[JobReturn]:
        """Launch jobs numbered ``numbers`` (a cluster task's chunk need not be contiguous)."""
        configs = [self.number(self.job_config(list(overrides)), idx) for overrides, idx in zip(job_overrides, numbers)]
        if not any(is_training_config(config) for config in configs):  # another app's jobs: nothing to stack
            self.start()
            return [self.run_one(config, idx) for idx, config in zip(numbers, configs)]
        from nnexp.batched.launch import BatchedSweep
        from nnexp.process import set_up_process

        set_up_process()  # before the stacks: their buffers page-faulted on every step without it
        self.start()
        tasks = [task_config(config) for config in configs]

        def finished(number: int, key: str) -> bool:  # the job says, from its dir, then the store
            return sweep_job(tasks[number], configs[number].hydra, job_dir(configs[number]), key).done() is not None

        sweep = BatchedSweep(tasks, self.chunk_size, finished)
        runs: dict[int, JobReturn] = {}
        if any(task.get("fail_fast", False) for task in tasks):  # a refused job fails: it stops the sweep before any stack trains
            for number in sweep.refused:
                runs[number] = self.run_one(configs[number], numbers[number], tasks[number], sweep.keys.get(number))
        for finished in sweep.train():  # each job is recorded as soon as all its fits are trained
            for number, result in finished:
                runs[number] = self.run_one(configs[number], numbers[number], tasks[number], sweep.keys[number], result,
                                            sweep.checked.get(number))
        counts = sweep.counts
        log.info(f"batched: {counts['batched']} of {counts['jobs']} jobs trained as {counts['fits']} fits in {counts['stacks']} stacks")
        for number in range(len(job_overrides)):  # the ordinary jobs, and those finished earlier
            if number not in runs:
                runs[number] = self.run_one(configs[number], numbers[number], tasks[number], sweep.keys.get(number),
                                            checked=sweep.checked.get(number))
        return [runs[number] for number in range(len(job_overrides))]
