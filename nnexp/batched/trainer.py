"""Train M small MLPs at once: every weight gets a leading member dimension.

Each member is the same fit as a sequential nnexp run of its config: its own seeded
initialisation (built by the same model factory), its own batch order (its own randperm
generator), its own fold's scaled rows, its own optimiser state, penalty and stopping rule.
Members with fewer rows are padded and masked; a member that has stopped (converged, early
stopped, diverged) is frozen while the others go on.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from nnexp.data.splits import FitData, TensorSplit
from nnexp.models.mlp import ACTIVATIONS
from nnexp.models.task import Task, target_total_variance

ACTIVATION_FUNCTIONS = {
    "relu": torch.relu, "tanh": torch.tanh, "logistic": torch.sigmoid, "identity": lambda x: x,
    "gelu": F.gelu, "elu": F.elu, "leaky_relu": F.leaky_relu, "silu": F.silu,
}
assert set(ACTIVATION_FUNCTIONS) == set(ACTIVATIONS)


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


@dataclass
class MemberResult:
    """A member's final weights (as its network), history and stop information."""

    network: torch.nn.Module
    history: list[dict] = field(default_factory=list)
    stop_reason: str = "max_epochs"
    diverged_epoch: int | None = None


def _pad(splits: list[TensorSplit], device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack members' splits into (M, n_max, ...) with a row mask (M, n_max)."""
    n_max = max(len(s) for s in splits)
    X = torch.zeros((len(splits), n_max, *splits[0].X.shape[1:]), dtype=splits[0].X.dtype, device=device)
    y = torch.zeros((len(splits), n_max, *splits[0].y.shape[1:]), dtype=splits[0].y.dtype, device=device)
    mask = torch.zeros((len(splits), n_max), dtype=torch.bool, device=device)
    for m, split in enumerate(splits):
        X[m, : len(split)], y[m, : len(split)], mask[m, : len(split)] = split.X.to(device), split.y.to(device), True
    return X, y, mask


class BatchedMLP:
    """Stacked weights of M MLPs with the same shape: W (M, in, out), b (M, 1, out)."""

    def __init__(self, networks: list[torch.nn.Module], activation: str, device):
        linears = [[layer for layer in net.modules() if isinstance(layer, torch.nn.Linear)] for net in networks]
        self.weights = [torch.stack([layers[i].weight.detach().T for layers in linears]).to(device).requires_grad_() for i in range(len(linears[0]))]
        self.biases = [torch.stack([layers[i].bias.detach()[None] for layers in linears]).to(device).requires_grad_() for i in range(len(linears[0]))]
        self.activation = ACTIVATION_FUNCTIONS[activation]

    @property
    def parameters(self) -> list[torch.Tensor]:
        return [*self.weights, *self.biases]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], x.shape[1], -1)
        last = len(self.weights) - 1
        for i, (W, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b, x, W)
            if i < last:
                x = self.activation(x)
        return x

    def member_network(self, template: torch.nn.Module, m: int) -> torch.nn.Module:
        """Member m's weights loaded into a copy of its own network."""
        linears = [layer for layer in template.modules() if isinstance(layer, torch.nn.Linear)]
        with torch.no_grad():
            for layer, W, b in zip(linears, self.weights, self.biases):
                layer.weight.copy_(W[m].T.cpu())
                layer.bias.copy_(b[m, 0].cpu())
        return template


def member_losses(task: Task, output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each member's mean loss over its valid rows, as in Task.loss: shape (M,)."""
    if task.kind == "binary":
        rows = F.binary_cross_entropy_with_logits(output.squeeze(-1), target, reduction="none")
    elif task.kind == "multiclass":
        rows = F.cross_entropy(output.transpose(1, 2), target, reduction="none")
    else:
        rows = 0.5 * (output - target).square().mean(dim=-1)
    mask = mask.to(rows.dtype)
    return (rows * mask).sum(1) / mask.sum(1).clamp_min(1)


def member_score_sums(task: Task, output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Task.batch_score_sum per member over valid rows: (M,) or (M, outputs) for regression."""
    if task.kind == "regression":
        return ((output - target).square() * mask[..., None]).sum(1)
    if task.kind == "binary":
        correct = (output.squeeze(-1) > 0) == target.bool()
    else:
        correct = output.argmax(-1) == target
    return (correct & mask).sum(1)


class BatchedOptimizer:
    """Adam (the update torch's fused Adam computes) or SGD with momentum/Nesterov, per member."""

    def __init__(self, params: list[torch.Tensor], spec: StackSpec, lr: torch.Tensor, momentum: torch.Tensor):
        self.params, self.spec, self.lr, self.momentum = params, spec, lr, momentum
        self.state = [dict() for _ in params]
        self.steps = torch.zeros_like(lr)

    def _view(self, value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return value.view(-1, *([1] * (like.dim() - 1)))

    @torch.no_grad()
    def step(self, active: torch.Tensor) -> None:
        self.steps += active.to(self.steps.dtype)
        for p, state in zip(self.params, self.state):
            grad, on = p.grad, self._view(active, p)
            lr = self._view(self.lr, p)
            if self.spec.optimizer == "adam":
                beta1, beta2 = self.spec.betas
                m = state.setdefault("m", torch.zeros_like(p))
                v = state.setdefault("v", torch.zeros_like(p))
                m.copy_(torch.where(on, m.lerp(grad, 1 - beta1), m))
                v.copy_(torch.where(on, v.mul(beta2).addcmul_(grad, grad, value=1 - beta2), v))
                t = self._view(self.steps, p).clamp_min(1)
                bias1, bias2 = 1 - beta1**t, 1 - beta2**t
                update = (lr / bias1) * m / (v.sqrt() / bias2.sqrt() + self.spec.eps)
            else:
                mu = self._view(self.momentum, p)
                if "buffer" not in state:  # torch starts a member's buffer at its first gradient
                    state["buffer"] = torch.zeros_like(p)
                    state["started"] = torch.zeros_like(active)
                buffer = state["buffer"]
                first = on & ~self._view(state["started"], p)
                new = torch.where(first, grad, buffer * mu + grad)
                buffer.copy_(torch.where(on, new, buffer))
                state["started"] |= active
                direction = grad + mu * buffer if self.spec.nesterov else buffer
                direction = torch.where(mu > 0, direction, grad)
                update = lr * direction
            p.sub_(torch.where(on, update, torch.zeros_like(update)))


def train_stack(members: list[MemberSpec], spec: StackSpec, device="cpu") -> list[MemberResult]:
    """Train every member for up to ``spec.max_epochs`` epochs; each stops on its own."""
    M, task = len(members), spec.task
    net = BatchedMLP([m.network for m in members], spec.activation, device)
    X, y, mask = _pad([m.data.train for m in members], device)
    n_rows = mask.sum(1)
    has_val = all(m.data.val is not None for m in members)
    if has_val:
        Xv, yv, maskv = _pad([m.data.val for m in members], device)
    variance = None
    if task.kind == "regression":
        variance = torch.stack([target_total_variance(task, m.data.train.y.to(device)) for m in members])
    alpha = torch.tensor([m.alpha for m in members], device=device)
    l1 = torch.tensor([m.l1 for m in members], device=device)
    lr = torch.tensor([m.lr for m in members], device=device)
    optimizer = BatchedOptimizer(net.parameters, spec, lr, torch.tensor([m.momentum for m in members], device=device))
    generators = [torch.Generator(device=device).manual_seed(m.seed) for m in members]
    running = torch.ones(M, dtype=torch.bool, device=device)
    results = [MemberResult(network=m.network) for m in members]
    sign = 1.0 if spec.monitor is None or not spec.monitor.endswith("score") else -1.0
    best = torch.full((M,), math.inf, device=device)
    wait = torch.zeros(M, dtype=torch.long, device=device)
    best_state = [p.detach().clone() for p in net.parameters] if spec.restore_best else None
    best_values = torch.full((M,), math.inf, device=device)  # for the best-weights restore
    batch = spec.batch_size
    steps_per_member = torch.ceil(n_rows / batch).long()
    started = time.perf_counter()
    for epoch in range(1, spec.max_epochs + 1):
        # Every member's own shuffle of its own rows, padded to n_max (padding rows sort last).
        order = torch.stack([
            torch.cat([torch.randperm(int(n), generator=g, device=device), torch.arange(int(n), X.shape[1], device=device)])
            for n, g in zip(n_rows.tolist(), generators)
        ])
        loss_sum = torch.zeros(M, device=device)
        score_sum = None
        for step in range(int(steps_per_member.max())):
            rows = order[:, step * batch : (step + 1) * batch]
            in_batch = torch.arange(step * batch, step * batch + rows.shape[1], device=device)[None] < n_rows[:, None]
            active = running & (steps_per_member > step)
            xb = torch.gather(X, 1, rows.view(M, -1, *([1] * (X.dim() - 2))).expand(-1, -1, *X.shape[2:]))
            yb = torch.gather(y, 1, rows.view(M, -1, *([1] * (y.dim() - 2))).expand(-1, -1, *y.shape[2:])) if y.dim() > 2 else torch.gather(y, 1, rows)
            for p in net.parameters:
                p.grad = None
            output = net(xb)
            losses = member_losses(task, output, yb, in_batch)
            losses.sum().backward()
            n_batch = in_batch.sum(1).clamp_min(1).to(X.dtype)
            with torch.no_grad():
                scale = (alpha / n_batch).view(M, 1, 1)
                scale_l1 = (l1 / n_batch).view(M, 1, 1)
                for W in net.weights:
                    W.grad += scale * W + scale_l1 * torch.sign(W)
            optimizer.step(active)
            loss_sum += torch.where(active, losses.detach() * in_batch.sum(1), torch.zeros_like(losses))
            batch_scores = member_score_sums(task, output.detach(), yb, in_batch)
            score_sum = batch_scores if score_sum is None else score_sum + batch_scores
        with torch.no_grad():
            n_batches = steps_per_member.to(X.dtype)
            penalty = sum(0.5 * alpha * W.square().sum((1, 2)) + l1 * W.abs().sum((1, 2)) for W in net.weights)
            train_loss = loss_sum / n_rows + penalty * n_batches / n_rows
            if task.kind == "regression":
                train_score = (1 - score_sum / variance).mean(-1)
            else:
                train_score = score_sum / n_rows
            values = {"train_loss": train_loss, "train_score": train_score}
            if has_val:
                out_v = net(Xv)
                values["val_loss"] = member_losses(task, out_v, yv, maskv)
                values["val_score"] = _masked_scores(task, out_v, yv, maskv)
        host = {k: v.tolist() for k, v in values.items()}  # one synchronisation per epoch
        seconds = time.perf_counter() - started
        diverged_now = ~torch.isfinite(train_loss) & running
        for m in torch.nonzero(running).flatten().tolist():
            results[m].history.append({"epoch": epoch, **{k: host[k][m] for k in host}, "lr": float(lr[m]), "seconds": seconds})
        for m in torch.nonzero(diverged_now).flatten().tolist():
            results[m].stop_reason, results[m].diverged_epoch = "diverged", epoch
        running &= ~diverged_now
        if spec.monitor is not None:
            current = sign * values[spec.monitor]
            improved = current < best - spec.tol  # Lightning's EarlyStopping rule, per member
            best = torch.where(improved & running, current, best)
            wait = torch.where(improved, torch.zeros_like(wait), wait + 1)
            stopped = running & (wait >= spec.patience)
            for m in torch.nonzero(stopped).flatten().tolist():
                results[m].stop_reason = "converged" if spec.monitor == "train_loss" else "early_stopped"
            running &= ~stopped
        if best_state is not None:
            best_values = _track_best(net, best_state, best_values, values[spec.monitor] * sign)
        if not bool(running.any()):
            break
    if best_state is not None:
        with torch.no_grad():
            for p, saved in zip(net.parameters, best_state):
                p.copy_(saved)
    for m, member in enumerate(members):
        results[m].network = net.member_network(member.network, m)
    return results


def _masked_scores(task: Task, output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Accuracy, or R2 (uniform average over outputs), per member over valid rows."""
    sums = member_score_sums(task, output, target, mask)
    count = mask.sum(1)
    if task.kind != "regression":
        return sums / count
    maskf = mask[..., None].to(target.dtype)
    mean = (target * maskf).sum(1) / count[:, None]
    total = (((target - mean[:, None]) ** 2) * maskf).sum(1)
    return (1 - sums / total).mean(-1)


def _track_best(net: BatchedMLP, best_state: list[torch.Tensor], best_values: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Keep each member's weights from its best epoch (strictly better, as BestWeights does);
    returns the updated best values."""
    better = values < best_values
    with torch.no_grad():
        for p, saved in zip(net.parameters, best_state):
            saved.copy_(torch.where(better.view(-1, *([1] * (p.dim() - 1))), p, saved))
    return torch.where(better, values, best_values)
