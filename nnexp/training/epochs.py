"""One epoch over in-memory tensors (randperm minibatches), or a whole full-batch L-BFGS fit.

The data already lives on the training device; batches are index views, with no DataLoader,
no collate and no host synchronisation inside the epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from nnexp import torch_compat
from nnexp.models.task import Task
from nnexp.training.distributed import sum_over_processes, sync_gradients, world
from nnexp.training.lbfgs import LBFGS, LBFGSOutcome, sklearn_layout
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
    orders: Callable[[int], torch.Tensor],
    penalty: WeightPenalty,
    weights: list[torch.Tensor],
) -> EpochResult:
    """Shuffle once (``orders(n_rows)``: this epoch's row order, scikit-learn's or torch's, see
    ``nnexp.sklearn_random``), then one optimiser step per minibatch of ``batch_size`` rows.

    The reported loss is scikit-learn's ``loss_curve_`` entry: each batch's loss carries
    ``penalty / n_batch`` at the weights that batch's step started from. Under data
    parallelism each process takes every ``world``-th row of each minibatch.
    """
    rank, processes = world()
    sharded = processes > 1
    n_rows = X.shape[0]
    full_batch = batch_size >= n_rows and not sharded
    order = None if full_batch else orders(n_rows)
    loss_sum = torch.zeros((), device=X.device)
    penalty_sum = torch.zeros((), device=X.device) if penalty.active else None
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
            penalty_sum += penalty.value(weights)  # at the weights this batch's loss saw
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
        mean_loss = mean_loss + penalty_sum / n_rows
    return EpochResult(mean_loss, score_sum, n_batches)


def sklearn_log_loss(task: Task, output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The mean log loss as scikit-learn's MLP computes its value (``binary_log_loss``,
    ``log_loss``): probabilities first, clipped to [eps, 1 - eps]. Where a prediction saturates it
    differs from the exact loss of the logits (``1 - p`` rounds, the clip caps a sample at
    -log(eps)), and scipy's line search, which compares these values, takes other steps."""
    eps = torch.finfo(output.dtype).eps
    probabilities = task.output_activation(output).clamp(eps, 1 - eps)
    if task.kind == "binary":
        # xlogy(y, p) + xlogy(1 - y, 1 - p) for labels 0 and 1, to the bit: one log a row, not two
        return -torch.where(y.bool(), probabilities, 1 - probabilities).log().mean()
    return -probabilities.gather(-1, y.long().unsqueeze(-1)).log().mean()


def full_batch_closure(
    network: nn.Module,
    task: Task,
    X: torch.Tensor,
    y: torch.Tensor,
    penalty: WeightPenalty,
    weights: list[torch.Tensor],
    last: dict[str, torch.Tensor],
):
    """The closure an L-BFGS optimiser calls: zero the gradients, compute the full-batch objective
    (loss + penalty) and its gradient, and keep the detached loss and output in ``last``.

    In one process both follow scikit-learn's order of operations (``_backprop``), so that fewer
    last bits differ from its objective, which a long L-BFGS run magnifies. Under data parallelism
    each process holds every ``world``-th row of ``X``; the closure returns the global loss and
    gradient, so that every process takes the same steps.
    """
    rank, processes = world()
    n_rows = X.shape[0]
    if processes > 1:
        X, y = X[rank::processes], y[rank::processes]
    parameters = list(network.parameters())

    def value(output: torch.Tensor, penalty_sum: torch.Tensor) -> torch.Tensor:
        """The objective's value as scikit-learn computes it: its clipped log loss (the line search
        compares these values) or half the mean squared error, plus (0.5 * alpha * sum W^2) / n."""
        data_loss = sklearn_log_loss(task, output, y) if task.kind != "regression" else task.loss(output, y)
        return data_loss + penalty_sum / n_rows

    def closure() -> torch.Tensor:
        network.zero_grad(set_to_none=True)  # the optimiser's parameters (its zero_grad adds a profiler span a call)
        output = network(X)
        if processes == 1:
            # the summed loss's gradient plus alpha * W, divided by n once, as scikit-learn's is
            penalty_sum = penalty(weights, 1) if penalty.active else output.new_zeros(())
            (task.loss(output, y, reduction="sum") + penalty_sum).backward()
            torch_compat.foreach_div_([p.grad for p in parameters if p.grad is not None], n_rows)
            loss = value(output.detach(), penalty_sum.detach())
        else:
            loss = task.loss(output, y)
            if task.kind != "regression":  # the line search compares scikit-learn's value; the gradient is the same
                loss = loss + (sklearn_log_loss(task, output.detach(), y) - loss.detach())
            if penalty.active:
                loss = loss + penalty(weights, n_rows)
            loss.backward()
            sync_gradients(parameters, X.shape[0], n_rows)
            loss = sum_over_processes(loss.detach() * X.shape[0]) / n_rows
        last["loss"], last["output"], last["y"] = loss.detach(), output.detach(), y
        return loss

    return closure


def lbfgs_fit(
    network: nn.Module,
    task: Task,
    optimizer: LBFGS,
    X: torch.Tensor,
    y: torch.Tensor,
    penalty: WeightPenalty,
    weights: list[torch.Tensor],
    on_iteration: Callable[[int, float, torch.Tensor], None],
) -> LBFGSOutcome:
    """A whole L-BFGS fit on the full batch (scikit-learn's ``solver='lbfgs'``).

    ``on_iteration(iteration, loss, score_sum)`` follows each accepted step, with the training
    rows' summed score at that step. With ``float64`` on, the network trains in double precision
    and returns to its dtype.
    """
    from nnexp.training.numpy_objective import dense_objective  # scipy's special functions: only for L-BFGS

    dtype = next(network.parameters()).dtype
    if optimizer.settings["float64"]:
        network.double()
        X = X.double()
        y = y.double() if y.is_floating_point() else y
    last: dict[str, torch.Tensor] = {}
    closure = full_batch_closure(network, task, X, y, penalty, weights, last)
    layout = sklearn_layout(network)
    # scikit-learn's own arithmetic where it has the same fit (a long fit follows its last bits)
    objective = dense_objective(network, task, X, y, penalty, weights) if layout and world()[1] == 1 else None

    def iteration_done(iteration: int, loss: float) -> None:
        if objective is not None:
            last["output"], last["y"] = torch.from_numpy(objective.logits), y
        on_iteration(iteration, loss, sum_over_processes(task.batch_score_sum(last["output"], last["y"])))

    try:
        return optimizer.minimize(closure, iteration_done, layout, objective)
    finally:
        network.to(dtype)


def torch_lbfgs_epoch(
    network: nn.Module,
    task: Task,
    optimizer: torch.optim.LBFGS,
    X: torch.Tensor,
    y: torch.Tensor,
    penalty: WeightPenalty,
    weights: list[torch.Tensor],
) -> tuple[EpochResult, bool]:
    """One ``torch.optim.LBFGS.step`` (up to its ``max_iter`` iterations), for ``optim=lbfgs_torch``;
    also whether it converged. It has, only when the gradient at the last point is within
    ``tolerance_grad`` or the step ended on its change test with both budgets left: the step also
    returns when it runs out of function evaluations (``max_eval``), and that is no convergence."""
    last: dict[str, torch.Tensor] = {}
    closure = full_batch_closure(network, task, X, y, penalty, weights, last)
    state = optimizer.state[optimizer.param_groups[0]["params"][0]]
    iterations_before, evaluations_before = state.get("n_iter", 0), state.get("func_evals", 0)
    optimizer.step(closure)
    iterations = state.get("n_iter", 0) - iterations_before
    evaluations = state.get("func_evals", 0) - evaluations_before
    largest = max(float(p.grad.abs().max()) for p in network.parameters() if p.grad is not None)
    converged = largest <= optimizer.defaults["tolerance_grad"] or (
        iterations < optimizer.defaults["max_iter"] and evaluations < optimizer.defaults["max_eval"]
    )
    score_sum = sum_over_processes(task.batch_score_sum(last["output"], last["y"]))
    return EpochResult(last["loss"], score_sum, iterations), converged
