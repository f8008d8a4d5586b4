"""The light check stage: every check of a run's config, and its data loading, that needs no torch.

It runs once per job: the command line's early path calls it before torch and Lightning are
imported (seconds), so that a mistake costs no start-up; a batched sweep's planning calls it for
each job; ``nnexp.plan.prepare`` takes its result, or calls it when no one did.
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig

from nnexp.config import check_config
from nnexp.data.bundle import DataBundle, check_folds, fit_validation_fraction
from nnexp.data.loading import load_data
from nnexp.factory import instantiate


@dataclass
class Checked:
    """A checked config's loaded data, stopping rule and validation fraction."""

    bundle: DataBundle
    stopping: object
    validation_fraction: float


def check_run(cfg: DictConfig) -> Checked:
    """Check the values, the stopping rule's own checks, the data, and what needs both; one line
    (``NnexpError``) naming the key and the fix for the first mistake."""
    check_config(cfg)
    stopping = instantiate(cfg.stopping)
    bundle = load_data(cfg.data)  # the run reuses the loaded bundle
    fraction = fit_validation_fraction(bundle, stopping)
    if int(cfg.cv) > 1:
        check_folds(bundle, int(cfg.cv))
    return Checked(bundle, stopping, fraction)
