"""L2 and L1 weight penalties with scikit-learn's scaling."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nnexp import torch_compat


def penalized_weights(network: nn.Module) -> list[torch.Tensor]:
    """Weight matrices and kernels (parameters with 2+ dimensions); biases and norm scales are not penalised."""
    return [p for p in network.parameters() if p.requires_grad and p.ndim > 1]


@dataclass
class WeightPenalty:
    """``0.5 * alpha * sum(W**2) / n_batch + l1 * sum(|W|) / n_batch``, added to the mean batch loss.

    This is scikit-learn's ``alpha`` for MLPs (not torch's ``weight_decay``): dividing by the
    batch size keeps the penalty's weight per sample the same for any ``batch_size``.
    """

    alpha: float = 1e-4
    l1: float = 0.0

    @property
    def active(self) -> bool:
        return self.alpha > 0 or self.l1 > 0

    def __call__(self, weights: list[torch.Tensor], n_batch: int) -> torch.Tensor | float:
        """The penalty's value, differentiable (L-BFGS needs it inside its closure)."""
        total: torch.Tensor | float = 0.0
        if self.alpha > 0:
            total = total + (0.5 * self.alpha / n_batch) * sum(w.square().sum() for w in weights)
        if self.l1 > 0:
            total = total + (self.l1 / n_batch) * sum(w.abs().sum() for w in weights)
        return total

    @torch.no_grad()
    def value(self, weights: list[torch.Tensor]) -> torch.Tensor:
        """``0.5 * alpha * sum(W**2) + l1 * sum(|W|)`` (for ``n_batch=1``), in a few fused ops."""
        total = torch.zeros((), device=weights[0].device)
        if self.alpha > 0:
            total = total + (0.5 * self.alpha) * torch.stack(torch_compat.foreach_norm(weights)).square().sum()
        if self.l1 > 0:
            total = total + self.l1 * torch.stack(torch_compat.foreach_norm(weights, 1)).sum()
        return total

    @torch.no_grad()
    def add_gradients(self, weights: list[torch.Tensor], n_batch: int) -> None:
        """Add the penalty's gradient (``alpha * W / n`` and ``l1 * sign(W) / n``) to ``W.grad``.

        One fused foreach call per term, instead of an autograd graph for the penalty on every
        minibatch step; the value itself is only needed once per epoch, for the reported loss.
        """
        grads = [w.grad for w in weights]
        if self.alpha > 0:
            torch_compat.foreach_add_(grads, weights, alpha=self.alpha / n_batch)
        if self.l1 > 0:
            torch_compat.foreach_add_(grads, torch_compat.foreach_sign(weights), alpha=self.l1 / n_batch)
