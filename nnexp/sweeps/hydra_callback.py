"""Hydra callback: summarise (and optionally refit) a sweep when the multirun ends."""

from __future__ import annotations

from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class SweepSummary(Callback):
    """Writes summary.csv and the sweep plots at the sweep root, and prints the ranking."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        from nnexp.sweeps.summary import summarise

        sweep_dir = Path(config.hydra.sweep.dir)
        if sweep_dir.is_dir():
            summarise(sweep_dir, refit=bool(config.get("refit", False)))
