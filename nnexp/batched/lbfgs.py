"""Batched L-BFGS: each member of a stack runs its own scipy L-BFGS-B, and the members' loss and
gradient evaluations run together, as one stacked forward and backward pass.

scipy's minimiser calls its objective; no public API drives it one step at a time. So each
member's ``scipy.optimize.minimize`` runs in a thread of its own, and its objective hands the
point to the stack and waits for the answer. Once every member still running has asked (or
finished), the stack evaluates all the points at once and answers the members. Each member
keeps scipy's own history, line search, budgets and stopping test, as in its sequential run;
no curvature is shared between members. A member that finishes leaves the stack.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from dataclasses import dataclass

import numpy as np
import torch

from nnexp.batched.objective import loss_gradient, running_scores, score_sums, weighted_losses
from nnexp.batched.shared_splits import SharedSplits
from nnexp.batched.stacked_mlp import StackedMLP
from nnexp.batched.trainer import MemberResult, MemberSpec, StackSpec
from nnexp.models.task import target_total_variance
from nnexp.training.lbfgs import LBFGSOutcome, run_lbfgsb
from nnexp.training.stopping import diverged


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


class StackStopped(Exception):
    """Raised inside a member's objective when the stack stops before the member has finished."""


@dataclass
class MemberRun:
    """One member's scipy minimiser, in its own thread: its history, and its outcome once done."""

    number: int
    x0: np.ndarray
    answers: queue.SimpleQueue  # the stack's answers to its requests (None: stop)
    history: list
    outcome: LBFGSOutcome | None = None
    x: np.ndarray | None = None
    error: BaseException | None = None
    score: float = math.nan  # the training score at the last point evaluated


GO = object()  # a member's first token: start the minimiser


class Relay:
    """Hands a round's answers to the members one at a time. A member's minimiser runs from its
    answer to its next request (or its end), then wakes the next member itself; the last one
    wakes the stack. Threads woken all at once fight over the GIL (a micro-benchmark, 35 members:
    0.9 ms per evaluation against 0.28 ms one at a time, where scipy's own work is 0.18 ms), and
    one wake per evaluation, member to member, costs less than a round trip through the stack's
    thread (the alpha grid's stack: 1.0-1.1 s against 1.2-1.4 s)."""

    def __init__(self, runs: list[MemberRun]):
        self.runs = runs
        self.points: dict[int, np.ndarray | None] = {}  # each member's next point (None: it has finished)
        self.round_done: queue.SimpleQueue = queue.SimpleQueue()
        self.order: list[int] = []
        self.answers: list = []
        self.position = 0

    def run_round(self, order: list[int], answers: list) -> None:
        """Answer members ``order`` in turn and wait until each has asked again or finished."""
        self.order, self.answers, self.position = order, answers, 0
        self._wake_next()
        self.round_done.get()

    def hand_on(self, member: int, point: np.ndarray | None) -> None:
        """In a member's thread, holding the token: its next point (None: it has finished)."""
        self.points[member] = point
        self._wake_next()

    def _wake_next(self) -> None:
        if self.position < len(self.order):
            member, answer = self.order[self.position], self.answers[self.position]
            self.position += 1
            self.runs[member].answers.put(answer)
        else:
            self.round_done.put(None)

    def stop(self) -> None:
        """The stack failed (or Ctrl-C): every minimiser still waiting for an answer returns."""
        for member, run in enumerate(self.runs):
            if self.points.get(member, 0) is not None:
                run.answers.put(None)


@torch.inference_mode()
def train_lbfgs_stack(members: list[MemberSpec], spec: StackSpec, device="cpu") -> list[MemberResult]:
    """Fit every member with its own L-BFGS-B (``spec.lbfgs``: the optimiser's settings) and
    return each member's network at scipy's final point, its history (a row per iteration) and
    its stop reason; ``MemberResult.lbfgs`` holds the iteration and evaluation counts."""
    from threadpoolctl import threadpool_limits

    settings = spec.lbfgs
    # float64, as a sequential fit runs (plan.why_not_batchable keeps float32 L-BFGS out of stacks)
    objective = StackObjective(members, spec, device, torch.float64)
    started = time.perf_counter()
    start_points = objective.net.member_rows(objective.net.theta).cpu().numpy()
    runs = [MemberRun(m, start_points[m].copy(), queue.SimpleQueue(), []) for m in range(len(members))]
    relay = Relay(runs)

    def run(member: MemberRun) -> None:
        def loss_and_grad(x: np.ndarray):
            relay.hand_on(member.number, x)
            answer = member.answers.get()
            if answer is None:
                raise StackStopped
            loss, grad, member.score = answer
            return loss, grad

        def on_iteration(iteration: int, loss: float) -> None:
            member.history.append({"epoch": iteration, "train_loss": loss, "train_score": member.score,
                                   "lr": math.nan, "seconds": time.perf_counter() - started})

        try:
            if member.answers.get() is GO:
                result, member.outcome = run_lbfgsb(loss_and_grad, member.x0, settings, on_iteration)
                member.x = result.x
        except BaseException as error:  # noqa: BLE001 - handed to the stack's thread, which raises it
            member.error = error
        finally:
            relay.hand_on(member.number, None)

    threads = [threading.Thread(target=run, args=(member,), name=f"nnexp-lbfgs-{member.number}", daemon=True) for member in runs]
    # scipy's OpenBLAS on one thread, as in a sequential fit (see nnexp.training.lbfgs).
    with threadpool_limits(limits={"libscipy_openblas": 1}):
        try:
            for thread in threads:
                thread.start()
            running = list(range(len(runs)))  # the stack's members, in its order
            relay.run_round(running, [GO] * len(runs))
            while True:
                keep = [i for i, m in enumerate(running) if relay.points[m] is not None]
                if len(keep) < len(running):
                    running = [running[i] for i in keep]
                    if not running:
                        break
                    objective.keep(torch.tensor(keep, device=objective.net.theta.device))
                batch = torch.from_numpy(np.stack([relay.points[m] for m in running])).to(objective.net.theta)
                loss, grad, score = objective(batch)
                loss, grad, score = loss.cpu().numpy(), grad.cpu().numpy(), score.float().cpu().tolist()
                # grad's rows are views of a fresh array, never written again: scipy may keep them
                relay.run_round(running, [(float(loss[i]), grad[i], score[i]) for i in range(len(running))])
        finally:
            relay.stop()
            for thread in threads:
                thread.join()
    for member in runs:
        if member.error is not None:
            raise member.error
    return [member_result(member, run, objective.net, spec) for member, run in zip(members, runs)]


def member_result(member: MemberSpec, run: MemberRun, net: StackedMLP, spec: StackSpec) -> MemberResult:
    """A member's network at scipy's final point (in the network's own dtype, as a sequential fit
    ends), its history, and its stop reason, ``diverged`` judged as the sequential fit judges it."""
    net.export(0, member.network, torch.from_numpy(run.x), members=1)
    outcome = run.outcome
    first = run.history[0]["train_loss"] if run.history else None
    reason = "diverged" if diverged(outcome.loss, first, spec.divergence_factor) else outcome.reason
    return MemberResult(network=member.network, history=run.history, stop_reason=reason,
                        lbfgs={"iterations": outcome.iterations, "function_evaluations": outcome.evaluations})
