"""One epoch over in-memory tensors: randperm minibatches, or a full-batch L-BFGS step.

The data already lives on the training device; batches are index views, with no DataLoader,
no collate and no host synchronisation inside the epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nnexp.models.task import Task
from nnexp.training.distributed import sum_over_processes, sync_gradients, world
from nnexp.training.penalty import WeightPenalty


@dataclass
class EpochResult:
    """Device tensors for one epoch: mean objective (loss + penalty) and summed batch scores.

    ``iterations`` is how many optimiser iterations the epoch made (L-BFGS may make none once
    it has converged).
    """

    loss: torch.Tensor
    score_sum: torch.Tensor
    iterations: int


def minibatch_epoch(
    network: nn.Module,
    task: Task,
    optimizer: torch.optim.Optimizer,
    X: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
    penalty: WeightPenalty,
    weights: list[torch.Tensor],
) -> EpochResult:
    """Shuffle once, then one optimiser step per minibatch of ``batch_size`` rows.

    The reported loss adds the penalty like scikit-learn's ``loss_curve_`` (each batch's loss
    carries ``penalty / n_batch``), evaluated once with the epoch's final weights. Under data
    parallelism each process takes every ``world``-th row of each minibatch.
    """
    rank, processes = world()
    sharded = processes > 1
    n_rows = X.shape[0]
    full_batch = batch_size >= n_rows and not sharded
    order = None if full_batch else torch.randperm(n_rows, generator=generator, device=X.device)
    loss_sum = torch.zeros((), device=X.device)
    outputs, shards = [], []
    n_batches = 0
    for start in range(0, n_rows, batch_size):
        if full_batch:
            xb, yb = X, y
        else:
            rows = order[start : start + batch_size]
            if sharded:  # this process's share of the global minibatch
                n_global = rows.shape[0]
                rows = rows[rank::processes]
                shards.append(rows)
            xb, yb = X[rows], y[rows]
        n_batch = xb.shape[0]
        optimizer.zero_grad(set_to_none=True)
        output = network(xb)
        loss = task.loss(output, yb)
        loss.backward()
        if sharded:
            sync_gradients(list(network.parameters()), n_batch, n_global)
            n_batch = n_global
        if penalty.active:
            penalty.add_gradients(weights, n_batch)
        optimizer.step()
        loss_sum += loss.detach() * xb.shape[0]
        outputs.append(output.detach())
        n_batches += 1
    # Scores are computed once per epoch from the kept batch outputs: per-batch metric ops
    # cost more than the step itself on small data.
    if full_batch:
        targets = y
    else:
        targets = y[torch.cat(shards)] if sharded else y[order]
    score_sum = task.batch_score_sum(torch.cat(outputs), targets)
    mean_loss = loss_sum / n_rows
    if sharded:
        score_sum, mean_loss = sum_over_processes(score_sum), sum_over_processes(loss_sum) / n_rows
    if penalty.active:
        with torch.no_grad():
            mean_loss = mean_loss + penalty(weights, 1) * n_batches / n_rows
    return EpochResult(mean_loss, score_sum, n_batches)


def lbfgs_epoch(
    network: nn.Module,
    task: Task,
    optimizer: torch.optim.LBFGS,
    X: torch.Tensor,
    y: torch.Tensor,
    penalty: WeightPenalty,
    weights: list[torch.Tensor],
) -> EpochResult:
    """One ``LBFGS.step`` on the full batch (up to ``max_iter`` iterations with line search).
    Under data parallelism each process holds every ``world``-th row and the closure returns the
    global loss and gradient."""
    last: dict[str, torch.Tensor] = {}
    rank, processes = world()
    n_rows = X.shape[0]
    if processes > 1:
        X, y = X[rank::processes], y[rank::processes]

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        output = network(X)
        loss = task.loss(output, y)
        if penalty.active:
            loss = loss + penalty(weights, n_rows)
        loss.backward()
        if processes > 1:
            sync_gradients(list(network.parameters()), X.shape[0], n_rows)
            loss = sum_over_processes(loss.detach() * X.shape[0]) / n_rows
        last["loss"], last["output"] = loss.detach(), output.detach()
        return loss

    state = optimizer.state[optimizer.param_groups[0]["params"][0]]
    before = state.get("n_iter", 0)
    optimizer.step(closure)
    iterations = optimizer.state[optimizer.param_groups[0]["params"][0]].get("n_iter", 0) - before
    return EpochResult(last["loss"], sum_over_processes(task.batch_score_sum(last["output"], y)), iterations)
