"""When a fit stops: scikit-learn's convergence rule, early stopping on a validation split, or max_epochs."""

from __future__ import annotations

import math
from dataclasses import dataclass

from nnexp.errors import ConfigError

MONITORS = ("train_loss", "val_loss", "val_score")
RULES = ("sklearn", "lightning")


class NoImprovementCount:
    """scikit-learn's count of epochs without improvement (``MLP._update_no_improvement_count``).

    An epoch counts when its value is not better than the best so far by more than ``tol``; any
    other epoch resets the count. The best value follows every new minimum (or maximum for a
    score), however small the gain: unlike Lightning's EarlyStopping, which moves its reference
    only on gains larger than ``tol``, so that a slowly falling loss never stops. ``update``
    says when the count exceeds ``patience`` (scikit-learn's ``n_iter_no_change``).
    """

    def __init__(self, tol: float, patience: int, maximize: bool):
        self.tol, self.patience, self.maximize = float(tol), int(patience), maximize
        self.best = -math.inf if maximize else math.inf
        self.count = 0

    def update(self, value: float) -> bool:
        """Count this epoch's ``value``; True once more than ``patience`` epochs in a row did not improve."""
        if self.maximize:
            worse = value < self.best + self.tol
            if value > self.best:
                self.best = value
        else:
            worse = value > self.best - self.tol
            if value < self.best:
                self.best = value
        self.count = self.count + 1 if worse else 0
        return self.count > self.patience

    def reset(self) -> None:
        """Start counting again (scikit-learn does after the adaptive schedule lowers the rate)."""
        self.count = 0


DIVERGENCE_FACTOR = 1e4
REFERENCE_FLOOR = 1e-2  # a near-perfect trivial predictor (one class almost everywhere) still allows a loss of 1e2


def trivial_loss(kind: str, y) -> float:
    """The training loss of the predictor that ignores the features, on these training rows: the
    class prior's cross-entropy (its entropy), or the target mean's half squared error (half the
    variance, averaged over outputs). Any fit should start near it and go below it."""
    import numpy as np

    values = np.asarray(y.detach().cpu() if hasattr(y, "detach") else y)
    if kind == "regression":
        values = values.reshape(len(values), -1).astype(np.float64)
        return float(0.5 * values.var(axis=0).mean()) if len(values) else 0.0
    _, counts = np.unique(values.reshape(len(values), -1).argmax(1) if values.ndim > 1 and values.shape[1] > 1
                          else values.ravel(), return_counts=True)
    prior = counts / counts.sum()
    return float(-(prior * np.log(prior)).sum())


def divergence_reference(kind: str, y) -> float:
    """The loss against which ``diverged`` judges a fit: the trivial predictor's, floored."""
    return max(trivial_loss(kind, y), REFERENCE_FLOOR)


def diverged(loss: float, reference: float | None, factor: float = DIVERGENCE_FACTOR) -> bool:
    """A fit has diverged when its training loss is not finite, or exceeds ``factor`` times the
    ``reference`` (:func:`divergence_reference`: the loss of predicting the class prior or the
    target's mean on the same rows; ``stopping.divergence_factor``, 0 turns the factor off). A
    first epoch that is already huge is judged too: the reference does not come from the fit."""
    if not math.isfinite(loss):
        return True
    return bool(factor) and reference is not None and math.isfinite(reference) and loss > factor * max(reference, 1e-12)


def stop_reason(monitor: str | None) -> str:
    """The stop reason recorded when a rule watching ``monitor`` ends a fit."""
    return "converged" if monitor == "train_loss" else "early_stopped"


@dataclass
class StoppingRule:
    """Stop once ``monitor`` has not improved by more than ``tol`` for more than ``patience`` epochs.

    ``monitor=train_loss`` is scikit-learn's convergence test (``tol``, ``n_iter_no_change``);
    ``val_score`` or ``val_loss`` is early stopping on a stratified ``validation_fraction`` of the
    training rows, and ``restore_best`` loads the best epoch's weights at the end. ``monitor=null``
    trains for ``trainer.max_epochs``. ``rule=sklearn`` counts as scikit-learn does
    (:class:`NoImprovementCount`); ``rule=lightning`` is Lightning's ``EarlyStopping`` (stops
    after ``patience`` epochs without a gain larger than ``tol`` over its reference value).
    """

    monitor: str | None = "train_loss"
    patience: int = 10
    tol: float = 1e-4
    validation_fraction: float = 0.0
    restore_best: bool = False
    rule: str = "sklearn"
    divergence_factor: float = DIVERGENCE_FACTOR  # see ``diverged``

    def __post_init__(self):
        if not (float(self.divergence_factor) == 0 or float(self.divergence_factor) > 1):
            raise ConfigError("stopping.divergence_factor", self.divergence_factor,
                              "a factor > 1 over the trivial predictor's loss, e.g. 1e4 (0: only NaN or inf is divergence)")
        if self.monitor is not None and self.monitor not in MONITORS:
            raise ConfigError("stopping.monitor", self.monitor, f"one of {', '.join(MONITORS)} or null")
        if not 0.0 <= float(self.validation_fraction) < 1.0:
            raise ConfigError("stopping.validation_fraction", self.validation_fraction, "a fraction in [0, 1), e.g. 0.1")
        if self.monitor and self.monitor.startswith("val") and self.validation_fraction <= 0:
            raise ConfigError(
                "stopping.validation_fraction", self.validation_fraction,
                f"> 0 when stopping.monitor={self.monitor}, e.g. 0.1",
            )
        if self.rule not in RULES:
            raise ConfigError("stopping.rule", self.rule, f"one of {', '.join(RULES)}")
        if int(self.patience) < 1:
            raise ConfigError("stopping.patience", self.patience, "a whole number of epochs >= 1")
        if float(self.tol) < 0:
            raise ConfigError("stopping.tol", self.tol, "a non-negative improvement threshold, e.g. 1e-4")

    @property
    def mode(self) -> str:
        return "max" if self.monitor and self.monitor.endswith("score") else "min"

    @property
    def reason(self) -> str:
        """The stop reason recorded when this rule ends a fit."""
        return stop_reason(self.monitor)

    def counter(self) -> NoImprovementCount:
        """A fresh scikit-learn no-improvement count for this rule's monitor."""
        return NoImprovementCount(self.tol, self.patience, maximize=self.mode == "max")

    def callbacks(self) -> list:
        """The stopping callback (scikit-learn's rule or Lightning's EarlyStopping), plus an
        in-memory best-weights restore when asked."""
        if self.monitor is None:
            return []
        from pytorch_lightning.callbacks import EarlyStopping

        from nnexp.training.callbacks import BestWeights, NoImprovementStopping

        if self.rule == "sklearn":
            callbacks = [NoImprovementStopping(self.monitor, self.counter())]
        else:
            callbacks = [
                EarlyStopping(
                    monitor=self.monitor, mode=self.mode, min_delta=float(self.tol), patience=int(self.patience),
                    check_on_train_epoch_end=True, check_finite=False, verbose=False,
                )
            ]
        if self.restore_best:
            callbacks.append(BestWeights(self.monitor, self.mode))
        return callbacks
