"""Learning-rate schedules stepped once per epoch, and the one scikit-learn has that torch lacks."""

from __future__ import annotations

import inspect
from functools import partial
from typing import Callable

import torch
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau


class InverseScaling(LRScheduler):
    """scikit-learn's ``invscaling``: ``lr = lr0 / (t + 1) ** power_t`` with ``t`` the samples seen so far."""

    def __init__(self, optimizer, power_t: float = 0.5, samples_per_epoch: int = 1, last_epoch: int = -1):
        self.power_t, self.samples_per_epoch = power_t, samples_per_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        seen = max(self.last_epoch, 0) * self.samples_per_epoch
        return [base / (seen + 1) ** self.power_t for base in self.base_lrs]


def make_scheduler(factory: Callable | None, optimizer: torch.optim.Optimizer, samples_per_epoch: int):
    """Call a ``_partial_`` scheduler factory; schedules that count samples are told the epoch size."""
    if factory is None:
        return None
    target = factory.func if isinstance(factory, partial) else factory
    if "samples_per_epoch" in inspect.signature(target).parameters:
        return factory(optimizer, samples_per_epoch=samples_per_epoch)
    return factory(optimizer)


def step_scheduler(scheduler, train_loss: float) -> None:
    """Advance one epoch; ``ReduceLROnPlateau`` (the ``adaptive`` schedule) watches the training loss."""
    if scheduler is None:
        return
    if isinstance(scheduler, ReduceLROnPlateau):
        scheduler.step(train_loss)
    else:
        scheduler.step()
