"""Learning-rate schedules stepped once per epoch, and the one scikit-learn has that torch lacks."""

from __future__ import annotations

import inspect
from functools import partial
from typing import Callable

import torch
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from nnexp.errors import ConfigError


class InverseScaling(LRScheduler):
    """scikit-learn's ``invscaling``: ``lr = lr0 / (t + 1) ** power_t`` with ``t`` the samples seen so far."""

    def __init__(self, optimizer, power_t: float = 0.5, samples_per_epoch: int = 1, last_epoch: int = -1):
        self.power_t, self.samples_per_epoch = power_t, samples_per_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        seen = max(self.last_epoch, 0) * self.samples_per_epoch
        return [base / (seen + 1) ** self.power_t for base in self.base_lrs]


class AdaptiveRate(LRScheduler):
    """scikit-learn's ``adaptive``: the rate stays at ``optim.lr`` until the stopping rule sees no
    improvement for more than ``n_iter_no_change`` epochs; then it is divided by ``factor`` (5)
    and counting starts again, and the fit stops only once the rate is at most ``min_lr`` (1e-6).
    The stopping rule calls :meth:`lower_rate`; the epoch step leaves the rate alone."""

    def __init__(self, optimizer, factor: float = 5.0, min_lr: float = 1e-6, last_epoch: int = -1):
        self.factor, self.min_lr = float(factor), float(min_lr)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [group["lr"] for group in self.optimizer.param_groups]

    def lower_rate(self) -> bool:
        """Divide the rate by ``factor`` and say True, or say False when it is already at ``min_lr`` or below."""
        if all(group["lr"] <= self.min_lr for group in self.optimizer.param_groups):
            return False
        for group in self.optimizer.param_groups:
            group["lr"] /= self.factor
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]
        return True


def make_scheduler(factory: Callable | None, optimizer: torch.optim.Optimizer, samples_per_epoch: int):
    """Call a ``_partial_`` scheduler factory; schedules that count samples are told the epoch size."""
    if factory is None:
        return None
    target = factory.func if isinstance(factory, partial) else factory
    try:
        if "samples_per_epoch" in inspect.signature(target).parameters:
            return factory(optimizer, samples_per_epoch=samples_per_epoch)
        return factory(optimizer)
    except (TypeError, ValueError, ZeroDivisionError) as error:  # torch checks a schedule's arguments when it is made
        arguments = ", ".join(f"{k}={v}" for k, v in getattr(factory, "keywords", {}).items())
        raise ConfigError("schedule", f"{getattr(target, '__name__', target)}({arguments})",
                          f"arguments the schedule accepts ({error})") from None


def step_scheduler(scheduler, train_loss: float) -> None:
    """Advance one epoch; a ``ReduceLROnPlateau`` schedule watches the training loss."""
    if scheduler is None:
        return
    if isinstance(scheduler, ReduceLROnPlateau):
        scheduler.step(train_loss)
    else:
        scheduler.step()
