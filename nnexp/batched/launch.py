"""Plan a sweep's stacks, train them, and hand every job its result before the jobs run."""

from __future__ import annotations

import logging
import time
from collections import defaultdict

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from nnexp.batched.plan import build_members, stack_key, stack_spec, training_device, why_not_batchable
from nnexp.batched.registry import provide
from nnexp.batched.trainer import train_stack
from nnexp.config import check_config
from nnexp.data.loading import load_data
from nnexp.errors import NnexpError
from nnexp.fit import FitResult
from nnexp.models.task import Task
from nnexp.sweeps.cv import aggregate_folds
from nnexp.sweeps.jobs import JobStore, job_key

log = logging.getLogger("nnexp.batched")


@torch.no_grad()
def score_splits(network: torch.nn.Module, task: Task, data) -> dict[str, float]:
    """Loss and score of every split, as NetModule.final_metrics computes them."""
    network.eval()
    metrics = {}
    for name, split in data.named_splits().items():
        output = network(split.X)
        metrics[f"{name}_loss"], metrics[f"{name}_score"] = float(task.loss(output, split.y)), float(task.score(output, split.y))
    return metrics


def train_ahead(task_configs: list[DictConfig], chunk_size: int) -> dict[str, int]:
    """Train every batchable, unfinished job of the sweep in stacks of at most ``chunk_size``
    members and register the results; returns counts for the log, and the indices of the
    batchable jobs (trained now or finished earlier)."""
    stacks: dict[tuple, list] = defaultdict(list)
    counts = {"jobs": len(task_configs), "batched": 0, "stacks": 0, "fits": 0, "batchable": set()}
    for index, cfg in enumerate(task_configs):
        try:
            check_config(cfg)
            reason = why_not_batchable(cfg)
        except NnexpError as error:  # the ordinary job reports it, with the key and the fix
            reason = str(error)
        if reason:
            log.info(f"job {index} runs as an ordinary job: {reason}")
            continue
        counts["batchable"].add(index)
        key = job_key(cfg)
        if JobStore(cfg.paths.store_dir).lookup(key):
            continue  # finished earlier: the job restores it
        stacks[stack_key(cfg)].append((index, key, cfg))
    for jobs in stacks.values():
        bundle = load_data(jobs[0][2].data)
        members = defaultdict(list)  # by batch size: `auto` depends on each fold's rows
        memo: dict = {}
        for index, key, cfg in jobs:
            for fold, spec, batch_size, layers, params in build_members(cfg, bundle, memo):
                members[batch_size].append((key, fold, spec, layers, params))
        fold_results: dict[str, list] = defaultdict(list)
        for batch_size, group in members.items():
            spec = stack_spec(jobs[0][2], bundle, batch_size)
            device = training_device(jobs[0][2])
            for start in range(0, len(group), chunk_size):
                chunk = group[start : start + chunk_size]
                started = time.perf_counter()
                results = train_stack([member for _, _, member, _, _ in chunk], spec, device)
                seconds = (time.perf_counter() - started) / len(chunk)
                counts["stacks"] += 1
                counts["fits"] += len(chunk)
                for (key, fold, member, layers, params), result in zip(chunk, results):
                    metrics = {
                        "status": "diverged" if result.stop_reason == "diverged" else "ok",
                        "stop_reason": result.stop_reason,
                        **score_splits(result.network, spec.task, member.data),
                        "epochs": len(result.history),
                        "max_epochs": spec.max_epochs,
                        "fit_seconds": seconds,
                        "params": params,
                        "batch_size": batch_size,
                        "precision": "32-true",
                        "n_train": len(member.data.train),
                        "layers": layers,
                        "batched": True,
                    }
                    fold_results[key].append((fold, FitResult(metrics, result.history, result.network, member.data)))
        for index, key, cfg in jobs:
            parts = [result for _, result in sorted(fold_results[key], key=lambda item: item[0] or 0)]
            provide(key, aggregate_folds(parts) if int(cfg.cv) > 1 else parts[0])
            counts["batched"] += 1
    return counts


def planning_config(job_config: DictConfig) -> DictConfig:
    """A job's task config (no hydra node) with a placeholder run dir, for planning before Hydra
    has made the job's dir."""
    task = OmegaConf.masked_copy(job_config, [key for key in job_config if key != "hydra"])
    with open_dict(task):
        task.paths.output_dir = "."
    return task
