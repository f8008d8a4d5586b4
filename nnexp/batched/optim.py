"""Adam and SGD (momentum, Nesterov) over a stack's flat parameter buffer, each member with its
own learning rate, momentum, step count and state: the updates the sequential run's optimiser
makes. ``adam`` and ``sgd`` are scikit-learn's (``nnexp.training.optimizers``); ``adam_torch``
and ``sgd_torch`` are torch.optim.Adam and SGD."""

from __future__ import annotations

import torch

from nnexp import torch_compat
from nnexp.batched.stacked_mlp import StackedMLP
from nnexp.training.optimizers import sklearn_adam_eps

KINDS = ("adam", "adam_torch", "sgd", "sgd_torch")


class StackOptimizer:
    """Per-member hyperparameters are (M,) tensors (learning rates in float64, so that one shared
    by every member is passed on exactly); state buffers are laid out like ``theta``."""

    def __init__(self, net: StackedMLP, kind: str, lr: torch.Tensor, momentum: torch.Tensor,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, nesterov: bool = False, fused: bool = False):
        self.net, self.kind, self.betas, self.eps, self.nesterov, self.fused = net, kind, betas, eps, nesterov, fused
        self.lr, self.momentum = lr, momentum
        # Steps taken: one plain number while every member has taken as many (no op per step),
        # else per member (M,).
        self.steps_scalar: int | None = 0
        self.steps: torch.Tensor | None = None
        self.state: dict[str, torch.Tensor] = {}
        self._step: torch.Tensor | None = None
        self._spread()

    def _spread(self) -> None:
        self.lr_e = self.net.per_element(self.lr).to(self.net.theta.dtype)
        self.momentum_e = self.net.per_element(self.momentum)
        # Plain numbers where every member agrees: scalar arguments save an op per step.
        self.lr_scalar = float(self.lr[0]) if bool((self.lr == self.lr[0]).all()) else None
        if self.steps is not None and bool((self.steps == self.steps[0]).all()):
            self.steps_scalar, self.steps = int(self.steps[0]), None

    def keep(self, keep: torch.Tensor) -> None:
        """Follow the stack when members leave it (call before ``StackedMLP.keep``)."""
        self.state = {name: self.net.take(buffer, keep) for name, buffer in self.state.items()}
        self.lr, self.momentum = self.lr[keep], self.momentum[keep]
        if self.steps is not None:
            self.steps = self.steps[keep]

    def rebind(self) -> None:
        """Re-derive the per-element vectors after the stack changed its members."""
        self._spread()

    @torch.no_grad()
    def step(self, frozen: torch.Tensor | None = None) -> None:
        """One update of every member; members marked in ``frozen`` (M,) keep their weights and state."""
        theta, grad = self.net.theta, self.net.grad
        if frozen is not None:  # rare: a member with fewer rows has no batch at this step
            saved = [theta.clone(), *(buffer.clone() for buffer in self.state.values())]
            if self.steps is None:
                self.steps, self.steps_scalar = torch.full_like(self.lr, self.steps_scalar), None
            self.steps += (~frozen).to(self.steps.dtype)
        elif self.steps is None:
            self.steps_scalar += 1
        else:
            self.steps += 1
        if self.kind.startswith("adam"):
            self._adam(theta, grad)
        elif self.kind == "sgd":
            self._sgd_velocity(theta, grad)
        else:
            self._sgd(theta, grad)
        if frozen is not None:
            frozen_e = self.net.per_element(frozen)
            for current, before in zip([theta, *self.state.values()], saved):
                torch.where(frozen_e, before, current, out=current)

    def _adam(self, theta: torch.Tensor, grad: torch.Tensor) -> None:
        beta1, beta2 = self.betas
        if "exp_avg" not in self.state:
            self.state["exp_avg"], self.state["exp_avg_sq"] = torch.zeros_like(theta), torch.zeros_like(theta)
        exp_avg, exp_avg_sq = self.state["exp_avg"], self.state["exp_avg_sq"]
        sklearn = self.kind == "adam"  # eps added before the bias correction: torch's eps / sqrt(1 - beta2**t)
        if self.fused and self.lr_scalar is not None and self.steps_scalar is not None:
            # torch.optim.Adam(fused=True)'s own kernel, as the sequential run calls it: one op, bit for bit.
            if self._step is None:  # the kernel reads the step count from a tensor; one is reused
                self._step = torch.zeros((), device=theta.device)
            self._step.fill_(float(self.steps_scalar))
            eps = sklearn_adam_eps(self.eps, beta2, self.steps_scalar) if sklearn else self.eps
            if torch_compat.fused_adam_([theta], [grad], [exp_avg], [exp_avg_sq], [self._step], lr=self.lr_scalar,
                                        beta1=beta1, beta2=beta2, eps=eps):
                return
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        if self.steps_scalar is None:  # members have made different numbers of steps
            steps = self.steps.double()  # bias corrections in double precision, as torch computes them
            step_size = self.net.per_element((self.lr / (1 - beta1**steps)).float())
            bias2_sqrt = (1 - beta2**steps).sqrt()
            eps = self.net.per_element((self.eps / bias2_sqrt).float()) if sklearn else self.eps
            denom = (exp_avg_sq.sqrt() / self.net.per_element(bias2_sqrt.float())).add_(eps)
            theta.addcdiv_(exp_avg * step_size, denom, value=-1)
            return
        # torch.optim.Adam's own (single-tensor) arithmetic, with the bias corrections as plain numbers.
        t = self.steps_scalar
        bias1, bias2_sqrt = 1 - beta1**t, (1 - beta2**t) ** 0.5
        eps = sklearn_adam_eps(self.eps, beta2, t) if sklearn else self.eps
        denom = (exp_avg_sq.sqrt() / bias2_sqrt).add_(eps)
        if self.lr_scalar is not None:
            theta.addcdiv_(exp_avg, denom, value=-self.lr_scalar / bias1)
        else:
            theta.addcdiv_(exp_avg * self.lr_e, denom, value=-1 / bias1)

    def _sgd_velocity(self, theta: torch.Tensor, grad: torch.Tensor) -> None:
        # scikit-learn's velocity, in nnexp.training.optimizers.SGD's order of operations:
        # v = momentum * v - lr * grad; w += v, or with Nesterov w += momentum * v - lr * grad.
        if "velocity" not in self.state:
            self.state["velocity"] = torch.zeros_like(theta)
        velocity = self.state["velocity"]
        velocity.mul_(self.momentum_e).addcmul_(grad, self.lr_e, value=-1)
        if self.nesterov:
            theta.add_((velocity * self.momentum_e).addcmul_(grad, self.lr_e, value=-1))
        else:
            theta.add_(velocity)

    def _sgd(self, theta: torch.Tensor, grad: torch.Tensor) -> None:
        # torch starts the momentum buffer at the first gradient; with momentum 0 the buffer is the
        # gradient itself, so one code path serves members with and without momentum.
        if "momentum_buffer" not in self.state:
            self.state["momentum_buffer"] = grad.clone()
        else:
            self.state["momentum_buffer"].mul_(self.momentum_e).add_(grad)
        buffer = self.state["momentum_buffer"]
        direction = grad.addcmul(buffer, self.momentum_e) if self.nesterov else buffer
        theta.addcmul_(direction, self.lr_e, value=-1)
