"""Batched L-BFGS: each member of a stack runs its own L-BFGS-B (nnexp.batched.lbfgsb: scipy's
algorithm without bounds, every member's steps as batched tensor operations), and the members'
loss and gradient evaluations run together, as one stacked forward and backward pass. Each
member keeps its own history, line search, budgets and stopping test, as in its sequential
(scipy) run; no curvature is shared between members. A member that finishes leaves the stack.
"""

from __future__ import annotations

import math
import time

import torch

from nnexp.batched.lbfgsb import MESSAGES, minimize_stack
from nnexp.batched.objective import loss_gradient, running_scores, score_sums, weighted_losses
from nnexp.batched.shared_splits import SharedSplits
from nnexp.batched.stacked_mlp import StackedMLP
from nnexp.batched.trainer import MemberResult, MemberSpec, StackSpec
from nnexp.models.task import target_total_variance
from nnexp.training.lbfgs import LBFGSOutcome
from nnexp.training.stopping import diverged, divergence_reference


class StackObjective:
    """The members' full-batch objectives, evaluated together: each member's mean training loss
    plus scikit-learn's penalty (``0.5 * alpha * sum(W**2) / n + l1 * sum(|W|) / n``), its
    gradient, and the training score at the point (what the sequential fit's history shows)."""

    def __init__(self, members: list[MemberSpec], spec: StackSpec, device, dtype: torch.dtype):
        self.task = spec.task
        self.net = StackedMLP([m.network for m in members], spec.activation, device, dtype)
        self.train = SharedSplits([m.data.train for m in members], device, ones_column=True, dtype=dtype)
        self.alpha = torch.tensor([m.alpha for m in members], dtype=dtype, device=device)
        self.l1 = torch.tensor([m.l1 for m in members], dtype=dtype, device=device)
        self.variance = None
        if spec.task.kind == "regression":
            self.variance = torch.stack([target_total_variance(spec.task, m.data.train.y.to(device, dtype)) for m in members])
        self._bind()

    def _bind(self) -> None:
        self.X, self.y = self.train.members()  # the members' rows, copied once per membership
        self.mask = self.train.row_mask()
        self.n_rows = self.train.n_rows.to(self.X.dtype)
        self.row_weight = self.mask.to(self.X.dtype) / self.n_rows[:, None]
        weight = self.net.is_weight.to(self.X.dtype)
        self.l2_grad = self.net.per_element(self.alpha / self.n_rows) * weight if bool((self.alpha > 0).any()) else None
        self.l1_grad = self.net.per_element(self.l1 / self.n_rows) * weight if bool((self.l1 > 0).any()) else None

    def keep(self, keep: torch.Tensor) -> None:
        """Go on with members ``keep`` (indices into the current members) only."""
        self.net.keep(keep)
        self.train.keep(keep)
        self.alpha, self.l1 = self.alpha[keep], self.l1[keep]
        if self.variance is not None:
            self.variance = self.variance[keep]
        self._bind()

    def __call__(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Each member's objective, gradient and training score at its point: ``points`` (M, P)
        in :meth:`StackedMLP.member_rows` layout; returns (M,), (M, P) and (M,)."""
        net, task = self.net, self.task
        net.load_member_rows(points)
        output, trace = net.forward(self.X)
        loss = weighted_losses(task, output, self.y, self.row_weight)
        sums = score_sums(task, output, self.y, self.mask)
        score = running_scores(sums, self.n_rows, self.variance)
        net.backward(loss_gradient(task, output, self.y, self.row_weight), trace)
        if self.l2_grad is not None:
            loss += 0.5 * self.alpha / self.n_rows * net.weight_norms(2)
            net.grad.addcmul_(net.theta, self.l2_grad)
        if self.l1_grad is not None:
            loss += self.l1 / self.n_rows * net.weight_norms(1)
            net.grad.addcmul_(net.theta.sign(), self.l1_grad)
        return loss, net.member_rows(net.grad), score


@torch.inference_mode()
def train_lbfgs_stack(members: list[MemberSpec], spec: StackSpec, device="cpu") -> list[MemberResult]:
    """Fit every member with its own L-BFGS-B (``spec.lbfgs``: the optimiser's settings; see
    :mod:`nnexp.batched.lbfgsb`) and return each member's network at its final point, its history
    (a row per iteration) and its stop reason; ``MemberResult.lbfgs`` holds the iteration and
    evaluation counts."""
    settings = spec.lbfgs
    # float64, as a sequential fit runs (plan.why_not_batchable keeps float32 L-BFGS out of stacks)
    objective = StackObjective(members, spec, device, torch.float64)
    started = time.perf_counter()
    histories: list[list[dict]] = [[] for _ in members]

    def on_iteration(numbers, iterations, losses, scores) -> None:
        seconds = time.perf_counter() - started
        for number, iteration, loss, score in zip(numbers.tolist(), iterations.tolist(), losses.tolist(), scores.tolist()):
            histories[number].append({"epoch": iteration, "train_loss": loss, "train_score": score,
                                      "lr": math.nan, "seconds": seconds})

    result = minimize_stack(objective, objective.net.member_rows(objective.net.theta), settings["max_iter"],
                            settings["max_fun"], settings["tol"], settings["history_size"], on_iteration=on_iteration)
    outcomes = [LBFGSOutcome(result.reasons[m], int(result.iterations[m]), int(result.evaluations[m]),
                             float(result.loss[m]), MESSAGES[result.reasons[m]]) for m in range(len(members))]
    x = result.x.cpu()
    return [member_result(member, x[m], outcomes[m], histories[m], objective.net, spec)
            for m, member in enumerate(members)]


def member_result(member: MemberSpec, x: torch.Tensor, outcome: LBFGSOutcome, history: list[dict], net: StackedMLP,
                  spec: StackSpec) -> MemberResult:
    """A member's network at its final point ``x`` (in the network's own dtype, as a sequential fit
    ends), its history, and its stop reason, ``diverged`` judged as the sequential fit judges it."""
    net.export(0, member.network, x, members=1)
    reference = divergence_reference(spec.task.kind, member.data.train.y)
    reason = "diverged" if diverged(outcome.loss, reference, spec.divergence_factor) else outcome.reason
    return MemberResult(network=member.network, history=history, stop_reason=reason,
                        lbfgs={"iterations": outcome.iterations, "function_evaluations": outcome.evaluations})
