"""What the data's task implies: output activation, loss and score (as in scikit-learn's MLP)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Task:
    """Regression (identity, half squared error, R2), binary (sigmoid, BCE, accuracy),
    multiclass (softmax, cross-entropy, accuracy). The network outputs raw logits or values."""

    kind: str
    n_outputs: int

    @property
    def score_name(self) -> str:
        return "r2" if self.kind == "regression" else "accuracy"

    def loss(self, output: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """Mean loss over the batch (``reduction="sum"``: summed). Squared loss is halved, as in
        scikit-learn, so alpha means the same."""
        if self.kind == "binary":
            return F.binary_cross_entropy_with_logits(output.squeeze(-1), target, reduction=reduction)
        if self.kind == "multiclass":
            return F.cross_entropy(output, target, reduction=reduction)
        return 0.5 * F.mse_loss(output, target, reduction=reduction)

    def split_loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss a split is reported with: scikit-learn's ``log_loss`` of the predicted
        probabilities for classification (in float64, clipped to [eps, 1 - eps], so one confident
        mistake counts at most -log(eps), about 36), half the mean squared error for regression.
        Training minimises the unclipped ``loss``; they differ only on such mistakes."""
        if self.kind == "regression":
            return self.loss(output, target)
        eps = torch.finfo(torch.float64).eps
        probabilities = self.output_activation(output.double()).clamp(eps, 1 - eps)
        if self.kind == "binary":
            positive = target.double()
            return -(positive * probabilities.log() + (1 - positive) * (1 - probabilities).log()).mean()
        return -probabilities.gather(-1, target.long().unsqueeze(-1)).log().mean()

    def output_activation(self, output: torch.Tensor) -> torch.Tensor:
        """Probabilities for classification, values for regression."""
        if self.kind == "binary":
            return torch.sigmoid(output.squeeze(-1))
        if self.kind == "multiclass":
            return torch.softmax(output, dim=-1)
        return output

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        """Class indices for classification, values for regression."""
        if self.kind == "binary":
            return (output.squeeze(-1) > 0).long()
        if self.kind == "multiclass":
            return output.argmax(dim=-1)
        return output

    def score(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Accuracy or R2 of a whole split, in float64 (a float32 accuracy of 0.94 reads
        0.9399999976158142, and one test row's difference then crosses a one-row tolerance)."""
        from torchmetrics.functional import r2_score

        if self.kind == "regression":
            return r2_score(output.double(), target.double())
        return (self.predict(output) == target.long()).double().mean()

    # The running training score of an epoch is summed batch by batch on the device. A torchmetrics
    # Metric.update per minibatch costs more than the minibatch step itself on small tabular data.
    def batch_score_sum(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Correct predictions (classification) or per-output squared errors (regression) in a batch."""
        if self.kind == "regression":
            return (output - target).square().sum(dim=0)
        if self.kind == "binary":
            return ((output.squeeze(-1) > 0) == target.bool()).sum()
        return (output.argmax(dim=-1) == target).sum()

    def running_score(self, score_sum: torch.Tensor, n_rows: int, total_variance: torch.Tensor | None):
        """Turn an epoch's summed batch scores into accuracy, or R2 against ``total_variance``."""
        if self.kind == "regression":
            return (1.0 - score_sum.double() / total_variance.double()).mean()
        return score_sum.double() / n_rows


def target_total_variance(task: Task, y: torch.Tensor) -> torch.Tensor | None:
    """Per-output sum of squares around the mean: the denominator of R2 for a running score."""
    if task.kind != "regression":
        return None
    return (y - y.mean(dim=0)).square().sum(dim=0).clamp_min(1e-12)
