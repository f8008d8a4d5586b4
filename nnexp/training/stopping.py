"""When a fit stops: scikit-learn's convergence rule, early stopping on a validation split, or max_epochs."""

from __future__ import annotations

from dataclasses import dataclass

from nnexp.errors import ConfigError

MONITORS = ("train_loss", "val_loss", "val_score")


def stop_reason(monitor: str | None) -> str:
    """The stop reason recorded when a rule watching ``monitor`` ends a fit."""
    return "converged" if monitor == "train_loss" else "early_stopped"


@dataclass
class StoppingRule:
    """Stop after ``patience`` epochs in which ``monitor`` improved by less than ``tol``.

    ``monitor=train_loss`` is scikit-learn's convergence test (``tol``, ``n_iter_no_change``);
    ``val_score`` or ``val_loss`` is early stopping on a stratified ``validation_fraction`` of the
    training rows, and ``restore_best`` loads the best epoch's weights at the end. ``monitor=null``
    trains for ``trainer.max_epochs``.
    """

    monitor: str | None = "train_loss"
    patience: int = 10
    tol: float = 1e-4
    validation_fraction: float = 0.0
    restore_best: bool = False

    def __post_init__(self):
        if self.monitor is not None and self.monitor not in MONITORS:
            raise ConfigError("stopping.monitor", self.monitor, f"one of {', '.join(MONITORS)} or null")
        if not 0.0 <= float(self.validation_fraction) < 1.0:
            raise ConfigError("stopping.validation_fraction", self.validation_fraction, "a fraction in [0, 1), e.g. 0.1")
        if self.monitor and self.monitor.startswith("val") and self.validation_fraction <= 0:
            raise ConfigError(
                "stopping.validation_fraction", self.validation_fraction,
                f"> 0 when stopping.monitor={self.monitor}, e.g. 0.1",
            )
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

    def callbacks(self) -> list:
        """Lightning's EarlyStopping, plus an in-memory best-weights restore when asked."""
        if self.monitor is None:
            return []
        from pytorch_lightning.callbacks import EarlyStopping

        from nnexp.training.callbacks import BestWeights

        callbacks = [
            EarlyStopping(
                monitor=self.monitor, mode=self.mode, min_delta=float(self.tol), patience=int(self.patience),
                check_on_train_epoch_end=True, check_finite=False, verbose=False,
            )
        ]
        if self.restore_best:
            callbacks.append(BestWeights(self.monitor, self.mode))
        return callbacks
