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

from nnexp.batched.objective import loss_gradient, mean_losses, running_scores, score_sums, split_scores, weighted_losses
from nnexp.batched.optim import StackOptimizer
from nnexp.batched.shared_splits import SharedSplits
from nnexp.batched.stacked_mlp import StackedMLP
from nnexp.batched.streams import BatchOrders, DropoutMasks
from nnexp.data.splits import FitData
from nnexp.models.task import Task, target_total_variance
from nnexp.training.stopping import DIVERGENCE_FACTOR, NoImprovementCount, diverged, divergence_reference, stop_reason


# Rows gathered at once per stack (fp32: 4 MB): a whole epoch for tabular data, one step for
# MNIST. Larger buffers stay out of cache, and past 32 MB each is a fresh mmap that page-faults
# (16 MNIST members ran 40% slower with 64 MB gathers).
GATHER_ELEMENTS = 1024 * 1024


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
    optimizer: str  # one of nnexp.batched.optim.KINDS
    batch_size: int
    max_epochs: int
    monitor: str | None
    patience: int
    tol: float
    restore_best: bool
    rule: str = "sklearn"  # the stopping count: scikit-learn's or Lightning's EarlyStopping
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    nesterov: bool = False
    fused: bool = False  # Adam: torch's fused kernel, as the sequential run's optimiser uses it
    divergence_factor: float = DIVERGENCE_FACTOR  # see nnexp.training.stopping.diverged
    lbfgs: dict | None = None  # optimizer "lbfgs": nnexp's LBFGS settings (nnexp.batched.lbfgs)


@dataclass
class MemberResult:
    """A member's final weights (as its network), history and stop information."""

    network: torch.nn.Module
    history: list[dict] = field(default_factory=list)
    stop_reason: str = "max_epochs"
    lbfgs: dict = field(default_factory=dict)  # L-BFGS: iterations and function_evaluations


@dataclass
class StepPlan:
    """One minibatch position of the epoch, the same in every epoch: its row range, each member's
    row weights (1/n_batch on real rows), the penalty gradient scales, the penalty's share of the
    epoch loss per member (``alpha / 2 / n_rows`` and ``l1 / n_rows``, 0 for a member without
    rows in this step), and who sits it out."""

    start: int
    stop: int
    row_weight: torch.Tensor
    l2: torch.Tensor | None
    l1: torch.Tensor | None
    frozen: torch.Tensor | None
    l2_in_loss: torch.Tensor | None = None
    l1_in_loss: torch.Tensor | None = None


class Stack:
    """The members still training, their data and optimiser state; ``keep`` drops the others.
    (Their stopping state is on the host, in :class:`StopRules`.)"""

    def __init__(self, members: list[MemberSpec], spec: StackSpec, device, held_out: bool = False):
        self.spec, self.device = spec, device
        self.ids = list(range(len(members)))
        self.net = StackedMLP([m.network for m in members], spec.activation, device)
        self.hidden_widths = [n_out for _, n_out in self.net.shapes[:-1]]
        self.train = SharedSplits([m.data.train for m in members], device, ones_column=True)
        self.validation = None
        if all(m.data.val is not None for m in members):
            self.validation = SharedSplits([m.data.val for m in members], device, ones_column=True)
        self.holdout = None  # scored each reported epoch when the members' jobs report to Optuna trials
        if held_out and all(m.data.holdout is not None for m in members):
            self.holdout = SharedSplits([m.data.holdout for m in members], device, ones_column=True)
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
        self.orders = BatchOrders(seeds, n_rows, spec.batch_size, device, [m.data.orders_state for m in members])
        self.dropout = DropoutMasks([m.dropout for m in members], seeds, n_rows, [m.rng_state for m in members], device)
        self.best_theta = self.net.theta.clone() if spec.restore_best else None
        self._plan()

    def _plan(self) -> None:
        batch, n_max = self.spec.batch_size, self.train.n_max
        self.mask, self.n_rows = self.train.row_mask(), self.train.n_rows
        dtype = self.train.X.dtype
        self.mean_weight = self.mask.to(dtype) / self.n_rows[:, None]  # a member's mean over its real rows
        self.lr_values = self.optimizer.lr.tolist()  # for the history
        weight_e = self.net.is_weight.to(dtype)
        has_l2, has_l1 = bool((self.alpha > 0).any()), bool((self.l1 > 0).any())
        starts = range(0, n_max, batch)
        counts = torch.stack([self.mask[:, start : start + batch].sum(1) for start in starts])  # (steps, M): real rows
        # Steps with the same rows per member (every full batch) share their scales: each penalty
        # scale is theta-sized, and one per step (20 MB x 300 steps for 64 MNIST members) took
        # bench_batched.py --members 64 to 13.6 GB of memory, against 1.9 GB shared.
        by_count: dict[tuple, tuple] = {}
        self.steps: list[StepPlan] = []
        for start, count, key in zip(starts, counts, map(tuple, counts.tolist())):
            if key not in by_count:
                inverse = 1.0 / count.clamp_min(1).to(dtype)
                # The penalty's value in the epoch loss, as the sequential epoch adds it: once per
                # batch, at the weights the batch's step starts from (scikit-learn's loss_curve_).
                in_loss = (count > 0).to(dtype) / self.n_rows
                by_count[key] = (
                    inverse,
                    self.net.per_element(self.alpha * inverse) * weight_e if has_l2 else None,
                    self.net.per_element(self.l1 * inverse) * weight_e if has_l1 else None,
                    None if min(key) > 0 else count == 0,
                    0.5 * self.alpha * in_loss if has_l2 else None,
                    self.l1 * in_loss if has_l1 else None,
                )
            inverse, l2, l1, frozen, l2_in_loss, l1_in_loss = by_count[key]
            stop = min(start + batch, n_max)
            row_weight = self.mask[:, start:stop] * inverse[:, None]
            self.steps.append(StepPlan(start, stop, row_weight, l2, l1, frozen, l2_in_loss, l1_in_loss))
        # Steps whose rows are gathered at once: up to GATHER_ELEMENTS (MNIST: one step at a time).
        every = max(1, GATHER_ELEMENTS // max(1, len(self.ids) * batch * self.train.X.shape[-1]))
        self.step_groups = [self.steps[i : i + every] for i in range(0, len(self.steps), every)]

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
        for name in ("variance", "alpha", "l1"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value[keep])
        self.train.keep(keep)
        for split in (self.validation, self.holdout):
            if split is not None:
                split.keep(keep)
        self._plan()

    def held_out_scores(self, values: dict[str, torch.Tensor]) -> torch.Tensor:
        """Each member's score on its held-out rows (a CV fold's), else on its validation split,
        else its running training score: what a trial reports."""
        if self.holdout is None:
            return values["val_score"] if "val_score" in values else values["train_score"]
        (X, y), mask = self.holdout.members(), self.holdout.row_mask()
        return split_scores(self.spec.task, self.net.forward(X)[0], y, mask)

    def train_epoch(self) -> dict[str, torch.Tensor]:
        """One epoch of minibatch steps for every member; returns the epoch's metrics, (M,) each."""
        task, net = self.spec.task, self.net
        rows = self.train.rows(self.orders.draw(self.train.n_max))
        outputs, targets = [], []
        penalty = None
        for step, xb, yb in self._batches(rows, targets):
            masks = self.dropout.draw(step.start, step.stop, self.hidden_widths) if self.dropout.active else None
            if step.l2_in_loss is not None:
                penalty = net.weight_norms(2) * step.l2_in_loss if penalty is None else penalty.addcmul_(net.weight_norms(2), step.l2_in_loss)
            if step.l1_in_loss is not None:
                penalty = net.weight_norms(1) * step.l1_in_loss if penalty is None else penalty.addcmul_(net.weight_norms(1), step.l1_in_loss)
            output, trace = net.forward(xb, masks)
            net.backward(loss_gradient(task, output, yb, step.row_weight), trace)
            if step.l2 is not None:
                net.grad.addcmul_(net.theta, step.l2)
            if step.l1 is not None:
                net.grad.addcmul_(net.theta.sign(), step.l1)
            self.optimizer.step(step.frozen)
            outputs.append(output)
        # The epoch's loss and running score from the outputs each step saw (as the sequential epoch).
        output, y = torch.cat(outputs, dim=1), targets[0] if len(targets) == 1 else torch.cat(targets, dim=1)
        train_loss = weighted_losses(task, output, y, self.mean_weight)
        if penalty is not None:
            train_loss.add_(penalty)
        values = {"train_loss": train_loss}
        sums = score_sums(task, output, y, self.mask)
        values["train_score"] = running_scores(sums, self.n_rows, self.variance)
        if self.validation is not None:
            (Xv, yv), maskv = self.validation.members(), self.validation.row_mask()
            output_v = net.forward(Xv)[0]
            values["val_loss"], values["val_score"] = mean_losses(task, output_v, yv, maskv), split_scores(task, output_v, yv, maskv)
        return values

    def _batches(self, rows: torch.Tensor, targets: list[torch.Tensor]):
        """(step, features, targets) of each step, in order; ``targets`` collects the epoch's targets."""
        for group in self.step_groups:
            first = group[0].start
            X_rows, y_rows = self.train.take(rows[:, first : group[-1].stop])
            targets.append(y_rows)
            for step in group:
                yield step, X_rows[:, step.start - first : step.stop - first], y_rows[:, step.start - first : step.stop - first]

    def final_theta(self) -> torch.Tensor:
        return self.best_theta if self.best_theta is not None else self.net.theta


class StopRules:
    """Each member's stopping state, on the host: the epoch's values arrive there anyway (for
    the history), and a few comparisons per member cost less than a dozen tensor ops per epoch.

    A non-finite training loss, or one far above the trivial predictor's on the member's own
    training rows (:func:`divergence_reference`), is a divergence. Otherwise scikit-learn's count
    (:class:`NoImprovementCount`, ``rule=sklearn``), or Lightning's EarlyStopping rule: an
    epoch improves when ``monitor`` beats the best so far by more than ``tol`` (compared as
    EarlyStopping compares, ``current -/+ tol`` in the values' own precision, which the stack
    computes: :meth:`shifted`); ``patience`` epochs without one stop the member.
    """

    def __init__(self, spec: StackSpec, members: int, references: list[float] | None = None):
        self.spec = spec
        self.references = references or [None] * members  # each member's divergence_reference
        self.sign = -1.0 if spec.monitor and spec.monitor.endswith("score") else 1.0  # lower is better after it
        maximize = self.sign < 0
        self.counters = ([NoImprovementCount(spec.tol, spec.patience, maximize) for _ in range(members)]
                         if spec.rule == "sklearn" else None)
        self.best = [math.inf] * members
        self.wait = [0] * members
        self.best_values = [math.inf] * members  # for restore_best: strictly better epochs

    def shifted(self, values: dict[str, torch.Tensor]) -> torch.Tensor:
        """``sign * monitor + tol``: EarlyStopping's ``current - min_delta``, negated for a score."""
        current = values[self.spec.monitor]
        return current + self.spec.tol if self.sign > 0 else torch.rsub(current, self.spec.tol)

    def update(self, member: int, loss: float, current: float, shifted: float | None) -> str | None:
        """Member's stop reason after this epoch, or None to go on; ``current`` is its monitored value."""
        if diverged(loss, self.references[member], self.spec.divergence_factor):
            return "diverged"
        if self.spec.monitor is None:
            return None
        if self.counters is not None:  # scikit-learn's count, on the same host floats as the sequential run's
            return stop_reason(self.spec.monitor) if self.counters[member].update(current) else None
        current *= self.sign
        if shifted < self.best[member]:
            self.best[member], self.wait[member] = current, 0
        else:
            self.wait[member] += 1
        if self.wait[member] >= self.spec.patience:
            return stop_reason(self.spec.monitor)
        return None

    def improved_on_best(self, member: int, current: float) -> bool:
        """Whether this epoch's weights are the member's best so far (for restore_best)."""
        current *= self.sign
        if current < self.best_values[member]:
            self.best_values[member] = current
            return True
        return False


@torch.inference_mode()  # less bookkeeping per op than no_grad: a single-member stack ran 17% faster
def train_stack(members: list[MemberSpec], spec: StackSpec, device="cpu", pruning=None) -> list[MemberResult]:
    """Train every member for up to ``spec.max_epochs`` epochs; each stops on its own. The
    members' networks come back with their final (or best) weights, as ordinary tensors.
    ``pruning`` (a ``StackPruning``): members whose job's Optuna pruner stops it leave the stack."""
    stack = Stack(members, spec, device, held_out=pruning is not None)
    rules = StopRules(spec, len(members), [divergence_reference(spec.task.kind, m.data.train.y) for m in members])
    results = [MemberResult(network=m.network) for m in members]
    started = time.perf_counter()
    for epoch in range(1, spec.max_epochs + 1):
        values = stack.train_epoch()
        names = list(values)
        columns = list(values.values())
        shifted = spec.monitor is not None and rules.counters is None  # only Lightning's rule compares shifted values
        if shifted:
            columns.append(rules.shifted(values))
        dtype = columns[0].dtype
        host = torch.stack([column.to(dtype) for column in columns], 1).tolist()  # one synchronisation per epoch
        seconds = time.perf_counter() - started
        loss_at, monitored = names.index("train_loss"), names.index(spec.monitor) if spec.monitor is not None else 0
        pruned = set()
        if pruning is not None and pruning.due(epoch):
            pruned = pruning.report(epoch, dict(zip(stack.ids, stack.held_out_scores(values).tolist())))
        leaving, best = [], []
        for m, (member, row, lr) in enumerate(zip(stack.ids, host, stack.lr_values)):
            results[member].history.append({"epoch": epoch, **dict(zip(names, row)), "lr": lr, "seconds": seconds})
            reason = rules.update(member, row[loss_at], row[monitored], row[-1] if shifted else None)
            if member in pruned and reason != "diverged":
                reason = "pruned"
            if stack.best_theta is not None:
                best.append(reason != "diverged" and rules.improved_on_best(member, row[monitored]))
            if reason is None and epoch == spec.max_epochs:
                reason = "max_epochs"
            if reason is not None:
                results[member].stop_reason = reason
                leaving.append(m)
        if any(best):  # keep each member's weights from its best epoch
            better = stack.net.per_element(torch.tensor(best, device=device))
            torch.where(better, stack.net.theta, stack.best_theta, out=stack.best_theta)
        for m in leaving:
            stack.net.export(m, members[stack.ids[m]].network, stack.final_theta())
        if len(leaving) == len(stack.ids):
            break
        if leaving:
            stack.keep(torch.tensor(sorted(set(range(len(stack.ids))) - set(leaving)), device=device))
    return results
