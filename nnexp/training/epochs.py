"""One epoch over in-memory tensors: randperm minibatches, or a full-batch L-BFGS step.

The data already lives on the training device; batches are index views, with no DataLoader,
no collate and no host synchronisation inside the epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nnexp.models.task import Task
from nnexp.training.penalty import WeightPenalty


@dataclass
class EpochResult:
    """Device tensors for one epoch: mean objective (loss + penalty) and summed batch scores."""

    loss: torch.Tensor
    score_sum: torch.Tensor


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
    """Shuffle once, then one optimiser step per minibatch of ``batch_size`` rows."""
    n_rows = X.shape[0]
    full_batch = batch_size >= n_rows
    order = None if full_batch else torch.randperm(n_rows, generator=generator, device=X.device)
    loss_sum = torch.zeros((), device=X.device)
    score_sum = torch.zeros((), device=X.device)
    for start in range(0, n_rows, batch_size):
        if full_batch:
            xb, yb = X, y
        else:
            rows = order[start : start + batch_size]
            xb, yb = X[rows], y[rows]
        n_batch = xb.shape[0]
        optimizer.zero_grad(set_to_none=True)
        output = network(xb)
        loss = task.loss(output, yb)
        if penalty.active:
            loss = loss + penalty(weights, n_batch)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach() * n_batch
        score_sum = score_sum + task.batch_score_sum(output.detach(), yb)
    return EpochResult(loss_sum / n_rows, score_sum)


def lbfgs_epoch(
    network: nn.Module,
    task: Task,
    optimizer: torch.optim.LBFGS,
    X: torch.Tensor,
    y: torch.Tensor,
    penalty: WeightPenalty,
    weights: list[torch.Tensor],
) -> EpochResult:
    """One ``LBFGS.step`` on the full batch (``max_iter`` iterations with line search)."""
    last: dict[str, torch.Tensor] = {}

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        output = network(X)
        loss = task.loss(output, y)
        if penalty.active:
            loss = loss + penalty(weights, X.shape[0])
        loss.backward()
        last["loss"], last["output"] = loss.detach(), output.detach()
        return loss

    optimizer.step(closure)
    return EpochResult(last["loss"], task.batch_score_sum(last["output"], y))
