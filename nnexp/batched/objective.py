"""Task losses, their gradients and scores, per member of a stack (Task's math with a member dim).

Outputs are (M, B, out); ``mask`` (M, B) marks each member's real rows (the rest is padding).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nnexp.models.task import Task


def row_losses(task: Task, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Each row's loss, as Task.loss averages it: (M, B)."""
    if task.kind == "binary":
        return F.binary_cross_entropy_with_logits(output.squeeze(-1), target, reduction="none")
    if task.kind == "multiclass":
        return F.cross_entropy(output.transpose(1, 2), target, reduction="none")
    return 0.5 * (output - target).square().mean(dim=-1)


def weighted_losses(task: Task, output: torch.Tensor, target: torch.Tensor, row_weight: torch.Tensor) -> torch.Tensor:
    """Each member's sum of ``row_weight``-weighted row losses: (M,). With weights 1/n on a
    member's real rows (0 on padding) it is the member's mean loss."""
    if task.kind == "binary":  # the weight inside the loss kernel: one op less
        return F.binary_cross_entropy_with_logits(output.squeeze(-1), target, weight=row_weight, reduction="none").sum(1)
    return (row_losses(task, output, target) * row_weight).sum(1)


def loss_gradient(task: Task, output: torch.Tensor, target: torch.Tensor, row_weight: torch.Tensor) -> torch.Tensor:
    """d(sum over members of row_weight-weighted row losses)/d(output); ``row_weight`` is
    1/n_batch on a member's real rows and 0 on padding, so each member gets its mean loss's gradient."""
    if task.kind == "binary":
        return torch.sigmoid(output).sub_(target.unsqueeze(-1)).mul_(row_weight.unsqueeze(-1))
    if task.kind == "multiclass":
        grad = torch.softmax(output, dim=-1)
        grad.scatter_add_(-1, target.unsqueeze(-1), torch.full_like(grad[..., :1], -1.0))
        return grad * row_weight.unsqueeze(-1)
    return (output - target) * (row_weight / output.shape[-1]).unsqueeze(-1)


def mean_losses(task: Task, output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each member's mean loss over its real rows: (M,)."""
    maskf = mask.to(output.dtype)
    return weighted_losses(task, output, target, maskf / maskf.sum(1, keepdim=True).clamp_min(1))


def score_sums(task: Task, output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Task.batch_score_sum per member over real rows: (M,), or (M, outputs) for regression."""
    if task.kind == "regression":
        return ((output - target).square() * mask.unsqueeze(-1)).sum(1)
    if task.kind == "binary":
        correct = (output.squeeze(-1) > 0) == target.bool()
    else:
        correct = output.argmax(-1) == target
    return (correct & mask).sum(1)


def running_scores(sums: torch.Tensor, n_rows: torch.Tensor, variance: torch.Tensor | None) -> torch.Tensor:
    """Each member's score from its :func:`score_sums` (Task.running_score per member): accuracy,
    or R2 (uniform average over outputs) against each member's target ``variance`` (M, outputs)."""
    return (1 - sums / variance).mean(-1) if variance is not None else sums / n_rows


def split_scores(task: Task, output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Accuracy, or R2 (uniform average over outputs), of each member's whole split: (M,)."""
    sums = score_sums(task, output, target, mask)
    count = mask.sum(1)
    if task.kind != "regression":
        return sums / count
    maskf = mask.unsqueeze(-1).to(target.dtype)
    mean = (target * maskf).sum(1) / count.unsqueeze(-1)
    total = ((target - mean.unsqueeze(1)).square() * maskf).sum(1)
    return (1 - sums / total).mean(-1)
