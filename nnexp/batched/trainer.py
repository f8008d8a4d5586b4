"""Train M small MLPs at once, as one stack with a leading member dimension.

Each member is the same fit as a sequential nnexp run of its config: its own seeded
initialisation (built by the same model factory), its own batch order (its own randperm
stream), its own fold's scaled rows, its own optimiser state, penalty and stopping rule.
Members with fewer rows are padded and masked. A member that stops (converged, early stopped,
diverged) leaves the stack with its final (or best) weights, and the others go on without it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from nnexp.batched.objective import loss_gradient, mean_losses, row_losses, score_sums, split_scores
from nnexp.batched.optim import StackOptimizer
from nnexp.batched.shared_splits import SharedSplits
from nnexp.batched.stacked_mlp import StackedMLP
from nnexp.batched.streams import BatchOrders, DropoutMasks
from nnexp.data.splits import FitData
from nnexp.models.task import Task, target_total_variance


@dataclass
class MemberSpec:
    """One member: its data, its initial network and its batchable hyperparameters."""

    data: FitData
    network: torch.nn.Module
    seed: int
    lr: float
    alpha: float = 0.0
    l1: float = 0.0
    momentum: float = 0.0
    dropout: float = 0.0
    rng_state: torch.Tensor | None = None  # the CPU generator's state when its sequential fit starts


@dataclass
class StackSpec:
    """What every member of a stack shares."""

    task: Task
    activation: str
    optimizer: str  # "adam" | "sgd"
    batch_size: int
    max_epochs: int
    monitor: str | None
    patience: int
    tol: float
    restore_best: bool
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    nesterov: bool = False
    fused: bool = False  # Adam: torch's fused kernel, as the sequential run's optimiser uses it


@dataclass
class MemberResult:
    """A member's final weights (as its network), history and stop information."""

    network: torch.nn.Module
    history: list[dict] = field(default_factory=list)
    stop_reason: str = "max_epochs"


@dataclass
class StepPlan:
    """One minibatch position of the epoch, the same in every epoch: its row range, each member's
    row weights (1/n_batch on real rows), the penalty gradient scales, and who sits it out."""

    start: int
    stop: int
    row_weight: torch.Tensor
    l2: torch.Tensor | None
    l1: torch.Tensor | None
    frozen: torch.Tensor | None


class Stack:
    """The members still training, their data and their stopping state; ``keep`` drops the others."""

    def __init__(self, members: list[MemberSpec], spec: StackSpec, device):
        self.spec, self.device = spec, device
        self.ids = list(range(len(members)))
        self.net = StackedMLP([m.network for m in members], spec.activation, device)
        self.hidden_widths = [n_out for _, n_out in self.net.shapes[:-1]]
        self.train = SharedSplits([m.data.train for m in members], device)
        self.validation = None
        if all(m.data.val is not None for m in members):
            self.validation = SharedSplits([m.data.val for m in members], device)
        self.variance = None
        if spec.task.kind == "regression":
            self.variance = torch.stack([target_total_variance(spec.task, m.data.train.y.to(device)) for m in members])
        self.alpha = torch.tensor([m.alpha for m in members], device=device)
        self.l1 = torch.tensor([m.l1 for m in members], device=device)
        self.optimizer = StackOptimizer(
            self.net, spec.optimizer, torch.tensor([m.lr for m in members], dtype=torch.float64, device=device),
            torch.tensor([m.momentum for m in members], device=device),
            betas=spec.betas, eps=spec.eps, nesterov=spec.nesterov, fused=spec.fused,
        )
        seeds, n_rows = [m.seed for m in members], [len(m.data.train) for m in members]
        self.orders = BatchOrders(seeds, n_rows, spec.batch_size, device)
        self.dropout = DropoutMasks([m.dropout for m in members], seeds, n_rows, [m.rng_state for m in members], device)
        self.best = torch.full((len(members),), math.inf, device=device)
        self.wait = torch.zeros(len(members), dtype=torch.long, device=device)
        self.best_theta = self.net.theta.clone() if spec.restore_best else None
        self.best_values = torch.full((len(members),), math.inf, device=device)
        self._plan()

    def _plan(self) -> None:
        batch, n_max = self.spec.batch_size, self.train.n_max
        self.mask, self.n_rows = self.train.row_mask(), self.train.n_rows
        self.mask_float = self.mask.to(self.train.X.dtype)
        self.lr_values = self.optimizer.lr.tolist()  # for the history
        dtype = self.train.X.dtype
        weight_e = self.net.is_weight.to(dtype)
        self.steps: list[StepPlan] = []
        for start in range(0, n_max, batch):
            stop = min(start + batch, n_max)
            real = self.mask[:, start:stop]
            count = real.sum(1)
            inverse = 1.0 / count.clamp_min(1).to(dtype)
            self.steps.append(StepPlan(
                start, stop, real * inverse[:, None],
                self.net.per_element(self.alpha * inverse) * weight_e if bool((self.alpha > 0).any()) else None,
                self.net.per_element(self.l1 * inverse) * weight_e if bool((self.l1 > 0).any()) else None,
                None if bool((count > 0).all()) else count == 0,
            ))
        self.n_batches = torch.ceil(self.n_rows / batch).clamp_min(1).to(dtype)

    def keep(self, keep: torch.Tensor) -> None:
        """Go on with members ``keep`` (indices into the current members) only."""
        if self.best_theta is not None:
            self.best_theta = self.net.take(self.best_theta, keep)
        self.optimizer.keep(keep)
        self.net.keep(keep)
        self.optimizer.rebind()
        self.ids = [self.ids[i] for i in keep.tolist()]
        self.orders.keep(keep)
        self.dropout.keep(keep)
        for name in ("variance", "alpha", "l1", "best", "wait", "best_values"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value[keep])
        self.train.keep(keep)
        if self.validation is not None:
            self.validation.keep(keep)
        self._plan()

    def train_epoch(self) -> dict[str, torch.Tensor]:
        """One epoch of minibatch steps for every member; returns the epoch's metrics, (M,) each."""
        task, net = self.spec.task, self.net
        rows = self.train.rows(self.orders.draw(self.train.n_max))
        outputs, targets = [], []
        for step in self.steps:
            # Gathered step by step: a whole epoch's copy of every member's rows would not fit for MNIST.
            xb, yb = self.train.take(rows[:, step.start : step.stop])
            masks = self.dropout.draw(step.start, step.stop, self.hidden_widths) if self.dropout.active else None
            output, trace = net.forward(xb, masks)
            net.backward(loss_gradient(task, output, yb, step.row_weight), trace)
            if step.l2 is not None:
                net.grad.addcmul_(net.theta, step.l2)
            if step.l1 is not None:
                net.grad.addcmul_(net.theta.sign(), step.l1)
            self.optimizer.step(step.frozen)
            outputs.append(output)
            targets.append(yb)
        # The epoch's loss and running score from the outputs each step saw (as the sequential epoch).
        output, y = torch.cat(outputs, dim=1), torch.cat(targets, dim=1)
        loss_sum = (row_losses(task, output, y) * self.mask_float).sum(1)
        train_loss = loss_sum / self.n_rows
        if self.steps[0].l2 is not None or self.steps[0].l1 is not None:  # the penalty's value, as the sequential epoch adds it
            penalty = 0.5 * self.alpha * sum(W.square().sum((1, 2)) for W in net.weights)
            if self.steps[0].l1 is not None:
                penalty = penalty + self.l1 * sum(W.abs().sum((1, 2)) for W in net.weights)
            train_loss = train_loss + penalty * self.n_batches / self.n_rows
        values = {"train_loss": train_loss}
        sums = score_sums(task, output, y, self.mask)
        values["train_score"] = (1 - sums / self.variance).mean(-1) if task.kind == "regression" else sums / self.n_rows
        if self.validation is not None:
            (Xv, yv), maskv = self.validation.members(), self.validation.row_mask()
            output_v = net.forward(Xv)[0]
            values["val_loss"], values["val_score"] = mean_losses(task, output_v, yv, maskv), split_scores(task, output_v, yv, maskv)
        return values

    def stop_rules(self, values: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(diverged, stopped) masks after an epoch: a non-finite loss, or Lightning's EarlyStopping
        rule (no improvement by more than ``tol`` for ``patience`` epochs), per member."""
        spec = self.spec
        diverged = ~torch.isfinite(values["train_loss"])
        stopped = torch.zeros_like(diverged)
        if spec.monitor is not None:
            current = values[spec.monitor] * (-1.0 if spec.monitor.endswith("score") else 1.0)
            improved = current < self.best - spec.tol
            self.best = torch.where(improved & ~diverged, current, self.best)
            self.wait = torch.where(improved, torch.zeros_like(self.wait), self.wait + 1)
            stopped = ~diverged & (self.wait >= spec.patience)
            if self.best_theta is not None:  # keep each member's weights from its best epoch (strictly better)
                better = current < self.best_values
                torch.where(self.net.per_element(better), self.net.theta, self.best_theta, out=self.best_theta)
                self.best_values = torch.where(better, current, self.best_values)
        return diverged, stopped

    def final_theta(self) -> torch.Tensor:
        return self.best_theta if self.best_theta is not None else self.net.theta


@torch.no_grad()
def train_stack(members: list[MemberSpec], spec: StackSpec, device="cpu") -> list[MemberResult]:
    """Train every member for up to ``spec.max_epochs`` epochs; each stops on its own."""
    stack = Stack(members, spec, device)
    results = [MemberResult(network=m.network) for m in members]
    started = time.perf_counter()
    for epoch in range(1, spec.max_epochs + 1):
        values = stack.train_epoch()
        diverged, stopped = stack.stop_rules(values)
        names = list(values)
        host = torch.stack([values[name].to(torch.float64) for name in names]).T.tolist()  # one synchronisation per epoch
        seconds = time.perf_counter() - started
        for member, row, lr in zip(stack.ids, host, stack.lr_values):
            results[member].history.append({"epoch": epoch, **dict(zip(names, row)), "lr": lr, "seconds": seconds})
        leaving = diverged | stopped
        if epoch == spec.max_epochs:
            leaving = torch.ones_like(leaving)
        for m in torch.nonzero(leaving).flatten().tolist():
            member = stack.ids[m]
            if bool(diverged[m]):
                results[member].stop_reason = "diverged"
            elif bool(stopped[m]):
                results[member].stop_reason = "converged" if spec.monitor == "train_loss" else "early_stopped"
            stack.net.export(m, members[member].network, stack.final_theta())
        if bool(leaving.all()):
            break
        if bool(leaving.any()):
            stack.keep(torch.nonzero(~leaving).flatten())
    return results
