"""Plan a sweep's stacks and train them: a producer of many jobs' ``FitResult``s at once."""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from typing import Callable, Iterator

import torch
from omegaconf import DictConfig

from nnexp.batched.plan import (
    OPTIMIZERS, build_members, lbfgs_stack_members, stack_key, stack_spec, training_device, why_not_batchable,
    why_not_stacked,
)
from nnexp.batched.trainer import train_stack
from nnexp.checks import Checked, check_run
from nnexp.config import is_training_config
from nnexp.cross_validation import aggregate_folds
from nnexp.data.loading import load_data
from nnexp.errors import NnexpError
from nnexp.handoff import FitResult
from nnexp.interrupts import raise_if_interrupted
from nnexp.metrics import FitMetrics
from nnexp.models.task import Task
from nnexp.store import job_key
from nnexp.training.hardware import auto_threads, step_work, torch_threads

log = logging.getLogger("nnexp.batched")


@torch.inference_mode()
def score_splits(network: torch.nn.Module, task: Task, data) -> dict[str, float]:
    """Loss and score of every split, as NetModule.final_metrics computes them."""
    network.eval()
    metrics = {}
    for name, split in data.named_splits().items():
        output = network(split.X)
        metrics[f"{name}_loss"], metrics[f"{name}_score"] = float(task.split_loss(output, split.y)), float(task.score(output, split.y))
    return metrics


class BatchedSweep:
    """A sweep's jobs sorted into stacks: ``batchable`` holds the jobs that train (or trained
    earlier) as stack members; the others run as ordinary jobs, and the log says why.
    ``finished(index, key)``: whether job ``index`` (identity ``key``) is done already, so that no
    stack trains it (its launcher asks the job: ``Job.done``); None trains every job (a refit)."""

    def __init__(self, task_configs: list[DictConfig], chunk_size: int,
                 finished: Callable[[int, str], bool] | None = None):
        self.threads = task_configs[0].get("threads", "auto") if task_configs else "auto"
        self.chunk_size = chunk_size
        self.counts = {"jobs": len(task_configs), "batched": 0, "stacks": 0, "fits": 0}
        self.batchable: set[int] = set()
        self.stacks: dict[str, list] = defaultdict(list)
        self.keys: dict[int, str] = {}  # each batchable job's identity, computed once
        self.checked: dict[int, Checked] = {}  # what each job's light checks found: its job does not check again
        self.refused: list[int] = []  # jobs whose checks refused their config: they fail whatever the stacks do
        self.trials: dict[str, object] = {}  # job key -> its Optuna trial link (jobs of nnexp's Optuna sweeper with a pruner)
        self.pruned: set[str] = set()  # jobs whose trial was pruned: their folds left in later chunks are not trained
        self.reporting: set[str] = set()  # jobs reporting from a chunk already (a step is reported once)
        planned: set[str] = set()
        for index, cfg in enumerate(task_configs):
            if not is_training_config(cfg):
                log.info(f"job {index} runs as an ordinary job: not an nnexp training config")
                continue
            try:
                self.checked[index] = check_run(cfg)
                reason = why_not_batchable(cfg) or why_not_stacked(cfg, self.checked[index].bundle)
            except NnexpError as error:  # the ordinary job reports it, with the key and the fix
                reason = str(error)
                self.refused.append(index)
            if reason:
                log.info(f"job {index} runs as an ordinary job: {reason}")
                continue
            self.batchable.add(index)
            key = self.keys[index] = job_key(cfg)
            if key in planned or (finished is not None and finished(index, key)):
                continue  # finished earlier (or a repeat of a job already planned): the job restores it
            planned.add(key)
            self.stacks[stack_key(cfg)].append((index, key, cfg))
            if cfg.get("trial") is not None:
                from nnexp.studies.trial_link import trial_link

                self.trials[key] = trial_link(cfg)

    def train(self) -> Iterator[list[tuple[int, FitResult]]]:
        """Train the stacks chunk by chunk; after each chunk, yield ``(job index, result)`` for
        the jobs whose fits are now all trained (folds aggregated under CV), so that they can be
        recorded at once: a sweep killed mid-way keeps every job recorded so far."""
        for jobs in self.stacks.values():
            bundle = load_data(jobs[0][2].data)
            members = defaultdict(list)  # by batch size: `auto` depends on each fold's rows
            memo: dict = {}
            full_batch = OPTIMIZERS[jobs[0][2].optim._target_] == "lbfgs"  # members of any fold size fit together
            for index, key, cfg in jobs:
                for fold, spec, batch_size, layers, params in build_members(cfg, bundle, memo):
                    members[None if full_batch else batch_size].append((key, fold, spec, layers, params))
            fits_left = Counter(key for group in members.values() for key, *_ in group)
            fold_results: dict[str, list] = defaultdict(list)
            for batch_size, group in members.items():
                spec = stack_spec(jobs[0][2], bundle, batch_size or max(len(member.data.train) for _, _, member, _, _ in group))
                chunk_size = self.chunk_size
                if full_batch:  # L-BFGS: as many members as their memory allows
                    chunk_size = min(chunk_size, lbfgs_stack_members(group[0][4], spec.lbfgs["history_size"]))
                for start in range(0, len(group), chunk_size):
                    raise_if_interrupted()  # one a finalizer swallowed while the last chunk trained
                    chunk = group[start : start + chunk_size]
                    for skipped in [member for member in chunk if member[0] in self.pruned]:
                        fits_left[skipped[0]] -= 1  # its job was pruned in an earlier chunk
                    chunk = [member for member in chunk if member[0] not in self.pruned]
                    for key, fold, result in self._train_chunk(chunk, spec, batch_size, training_device(jobs[0][2])) if chunk else ():
                        fold_results[key].append((fold, result))
                        fits_left[key] -= 1
                    yield self._finish([job for job in jobs if fits_left[job[1]] == 0 and job[1] in fold_results], fold_results)

    def _train_chunk(self, chunk: list, spec, batch_size: int, device: str) -> Iterator[tuple[str, int | None, FitResult]]:
        started = time.perf_counter()
        members = [member for _, _, member, _, _ in chunk]
        # threads=auto counts the whole stack's step: M members' matmuls run as one.
        layers = [layer for layer in members[0].network.modules() if isinstance(layer, torch.nn.Linear)]
        work = len(members) * step_work(layers[0].in_features, [layer.out_features for layer in layers[:-1]],
                                        layers[-1].out_features, spec.batch_size)
        # A job whose folds span chunks reports from the first: Optuna takes one value per step.
        reporting = {key for key, *_ in chunk if key in self.trials and key not in self.reporting}
        self.reporting |= reporting
        links = {position: self.trials[key] for position, (key, *_) in enumerate(chunk) if key in reporting}
        pruning = None
        if links:
            from nnexp.batched.pruning import StackPruning

            pruning = StackPruning(links)
        with torch_threads(auto_threads(self.threads, work)):
            if spec.lbfgs is not None:
                from nnexp.batched.lbfgs import train_lbfgs_stack

                results = train_lbfgs_stack(members, spec, device)
            else:
                results = train_stack(members, spec, device, pruning)
        self.pruned.update(key for (key, *_), result in zip(chunk, results) if result.stop_reason == "pruned")
        seconds = (time.perf_counter() - started) / len(chunk)
        self.counts["stacks"] += 1
        self.counts["fits"] += len(chunk)
        for (key, fold, member, layers, params), result in zip(chunk, results):
            metrics = FitMetrics(
                status=result.stop_reason if result.stop_reason in ("diverged", "pruned") else "ok", stop_reason=result.stop_reason,
                epochs=len(result.history), max_epochs=spec.max_epochs, fit_seconds=seconds, params=params,
                batch_size=batch_size or len(member.data.train), n_train=len(member.data.train), precision="32-true",
                layers=layers, batched=True, **score_splits(result.network, spec.task, member.data), **result.lbfgs,
            )
            yield key, fold, FitResult(metrics, result.history, result.network, member.data)

    def _finish(self, done: list, fold_results: dict[str, list]) -> list[tuple[int, FitResult]]:
        """Each finished job's (cross-validated) result."""
        finished = []
        for index, key, cfg in done:
            parts = [result for _, result in sorted(fold_results.pop(key), key=lambda item: item[0] or 0)]
            finished.append((index, aggregate_folds(parts) if int(cfg.cv) > 1 else parts[0]))
            self.counts["batched"] += 1
        return finished

