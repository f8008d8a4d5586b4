"""Hydra callback: summarise (and optionally refit) a sweep when the multirun ends."""

from __future__ import annotations

from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class SweepSummary(Callback):
    """Writes summary.csv at the sweep root, prints the ranking and refits; the figures and
    report.html are drawn in the background (``figures: background``) or before returning
    (``foreground``)."""

    def __init__(self, figures: str = "background"):
        self.figures = figures

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        from nnexp.sweeps.summary import summarise

        sweep_dir = Path(config.hydra.sweep.dir)
        if sweep_dir.is_dir():
            from nnexp.provenance import write_provenance

            write_provenance(sweep_dir)  # not at the start: a sweeper may pick another dir (Optuna's second worker)
            target = str(config.hydra.launcher.get("_target_", ""))
            batched = target.endswith(("BatchedLauncher", "ClusterLauncher"))
            runner = None
            if config.get("refit", False) and target.endswith("ClusterLauncher"):
                from nnexp.hydra_integration.cluster_launcher import cluster_refit

                runner = cluster_refit(config.hydra.launcher, sweep_dir)
            summarise(sweep_dir, refit=bool(config.get("refit", False)), figures=self.figures, batched=batched, refit_runner=runner)
