"""scikit-learn's SGD and Adam updates as torch optimisers.

torch's SGD keeps a buffer of raw gradients and multiplies it by the current rate; scikit-learn
keeps a velocity of steps already scaled by the rate (``v = momentum * v - lr * grad``). The two
agree only while the rate is constant: under ``invscaling`` or ``adaptive`` torch's buffer
carries old gradients at the new, smaller rate. torch's Adam adds ``eps`` to the bias-corrected
``sqrt(v_hat)``, scikit-learn to the raw ``sqrt(v)``. ``optim=sgd_torch`` and ``optim=adam_torch``
keep torch's own classes.
"""

from __future__ import annotations

import math

import torch

from nnexp import torch_compat


class SGD(torch.optim.Optimizer):
    """scikit-learn's ``solver='sgd'`` update: ``v = momentum * v - lr * grad``, then ``w += v``,
    or with Nesterov's momentum ``w += momentum * v - lr * grad`` (using the new ``v``)."""

    def __init__(self, params, lr: float = 0.001, momentum: float = 0.9, nesterov: bool = True):
        if not lr > 0 or not math.isfinite(lr):
            raise ValueError(f"lr must be a positive finite number, got {lr}")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            lr, momentum = group["lr"], group["momentum"]
            velocities = []
            for p in params:
                state = self.state[p]
                if "velocity" not in state:
                    state["velocity"] = torch.zeros_like(p)
                velocities.append(state["velocity"])
            # v = momentum * v - lr * grad, in scikit-learn's order of operations.
            torch_compat.foreach_mul_(velocities, momentum)
            torch_compat.foreach_add_(velocities, grads, alpha=-lr)
            if group["nesterov"]:
                update = torch_compat.foreach_mul(velocities, momentum)
                torch_compat.foreach_add_(update, grads, alpha=-lr)
                torch_compat.foreach_add_(params, update)
            else:
                torch_compat.foreach_add_(params, velocities)
        return loss


class Adam(torch.optim.Adam):
    """torch's Adam (fused kernel and all) with scikit-learn's epsilon placement.

    scikit-learn steps by ``lr * sqrt(1 - beta2**t) / (1 - beta1**t) * m / (sqrt(v) + eps)``;
    torch by ``lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)``. Passing torch
    ``eps / sqrt(1 - beta2**t)`` at step ``t`` makes the two the same update.
    """

    def __init__(self, params, lr: float = 0.001, betas=(0.9, 0.999), eps: float = 1e-8, **kwargs):
        super().__init__(params, lr=lr, betas=betas, eps=eps, **kwargs)
        for group in self.param_groups:
            # The step count lives here as a plain number: torch's own is a tensor, on the GPU a
            # host synchronisation per read.
            group["sklearn_eps"], group["sklearn_step"] = eps, 0

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            group["sklearn_step"] += 1
            group["eps"] = sklearn_adam_eps(group["sklearn_eps"], group["betas"][1], group["sklearn_step"])
        return super().step(closure)


def sklearn_adam_eps(eps: float, beta2: float, step: float) -> float:
    """The ``eps`` that makes torch's Adam step ``step`` equal scikit-learn's (see :class:`Adam`)."""
    return eps / math.sqrt(1.0 - beta2**step)
