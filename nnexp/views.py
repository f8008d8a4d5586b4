"""Views of a finished run dir or sweep dir, the CLI's or the API's: ``Run`` (scores, history,
config, model, predictions, figures) and ``Sweep`` (summary, runs, best); ``load`` opens either."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from nnexp.errors import NnexpError


def load(path: str | os.PathLike) -> "Run | Sweep":
    """Open a run dir (it has metrics.json) or a sweep dir (multirun.yaml), the CLI's or the API's."""
    from nnexp.results import METRICS_FILE
    from nnexp.sweeps.grid import SWEEP_RECORD

    path = Path(path)
    if (path / METRICS_FILE).is_file():
        return Run(path)
    if (path / SWEEP_RECORD).is_file():
        return Sweep(path)
    raise NnexpError(f"{path} is neither a run dir (it has no {METRICS_FILE}) nor a sweep dir (no {SWEEP_RECORD}); "
                     "give a dir under outputs/ or multirun/")


@dataclass
class Run:
    """A finished run dir: its scores, history, config, trained model and figures."""

    dir: Path

    def __post_init__(self) -> None:
        self.dir = Path(self.dir).absolute()  # a notebook may change its working dir later

    @cached_property
    def _saved(self):
        from nnexp.artifacts import Run as SavedRun

        return SavedRun(self.dir)

    @cached_property
    def record(self):
        """metrics.json as a ``RunRecord`` (status, objective, fit measurements)."""
        return self._saved.metrics

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def scores(self) -> dict[str, dict[str, float]]:
        """split -> metric -> value: ``{"train": {"loss": .., "accuracy": ..}, "val": ..., "test": ...}``."""
        fit = self.record.fit
        if fit is None:
            return {}
        score_name = self.record.score_name or "score"
        scores: dict[str, dict[str, float]] = {}
        for name, value in fit.split_scores().items():
            split, metric = name.rsplit("_", 1)
            if split != "holdout":
                scores.setdefault(split, {})[score_name if metric == "score" else metric] = value
        if fit.val_score_std is not None:
            scores["val"][f"{score_name}_std"] = fit.val_score_std
        return scores

    @cached_property
    def history(self):
        """history.csv as a pandas DataFrame, one row per epoch (per L-BFGS iteration)."""
        import pandas as pd

        from nnexp.results import HISTORY_FILE

        return pd.read_csv(self.dir / HISTORY_FILE)

    @cached_property
    def config(self):
        """The run's composed, resolved config (config.yaml)."""
        return self._saved.config

    @property
    def model(self):
        """The trained network (a torch module in eval mode), rebuilt from model.pt."""
        return self._saved.network

    def predict(self, X) -> Any:
        """Predictions for raw inputs (scaled as in training): class labels, or regression values."""
        import numpy as np

        predicted = self._saved.predict(X)
        classes = self._saved.saved.get("classes")
        if self._saved.task.kind != "regression" and classes:
            return np.asarray(classes)[predicted]
        return predicted

    def plot(self, name: str = "curves"):
        """A matplotlib Figure of the run, drawn by ``nnexp-plot``'s code (kinds: curves, boundary,
        fit, confusion, weights, filters, features); shows inline in Jupyter, ``.savefig(path)``
        writes it. Nothing is written into the run dir."""
        from nnexp.drawing import run_figures

        return run_figures(self._saved, name)[0][1]

    def __repr__(self) -> str:
        test = self.scores.get("test", {})
        shown = ", ".join(f"test {metric} {value:.4f}" for metric, value in test.items() if metric != "loss")
        return f"Run({str(self.dir)!r}, {self.status}{', ' + shown if shown else ''})"


@dataclass
class Sweep:
    """A sweep dir: its summary (summary.csv), its runs and the best of them."""

    dir: Path
    _runs: list[Run] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.dir = Path(self.dir).absolute()  # a notebook may change its working dir later

    @property
    def summary(self):
        """summary.csv as a DataFrame, best grid point first (written when missing: a sweep still
        running, or one stopped before its end)."""
        import pandas as pd

        from nnexp.sweeps.summary import SUMMARY_FILE

        path = self.dir / SUMMARY_FILE
        if not path.is_file():
            from rich.console import Console

            from nnexp.sweeps.summary import summarise

            summarise(self.dir, plots=False, console=Console(quiet=True))
        return pd.read_csv(path)

    @property
    def runs(self) -> list[Run]:
        """Every job that finished training, in job-number order."""
        from nnexp.sweeps.summary import read_jobs

        return [Run(job.path) for job in read_jobs(self.dir) if job.record is not None and job.record.fit is not None]

    @property
    def best(self) -> Run:
        """The best grid point's best job (rank 1 of the summary)."""
        summary = self.summary
        finished = summary[summary["mean_val_score"].notna()]
        if finished.empty:
            raise NnexpError(f"{self.dir}: no grid point finished without errors, so there is no best run")
        return Run(self.dir / str(finished.iloc[0]["best_job"]))

    def plot(self, name: str = "curves"):
        """A matplotlib Figure holding the image of one of the sweep's figures (curves, grid,
        all's first), drawn into the sweep dir as ``nnexp-plot`` draws it."""
        return _figure_of(self.dir, name)

    def __repr__(self) -> str:
        return f"Sweep({str(self.dir)!r})"


def _figure_of(directory: Path, name: str):
    """A Figure holding the PNG that ``nnexp-plot DIR name`` draws, at its own size; the process's
    matplotlib backend is put back afterwards (drawing uses Agg). For a sweep's figures, which are
    drawn straight to files."""
    import matplotlib
    import matplotlib.image

    from nnexp.drawing import draw
    from nnexp.plots import new_figure

    backend = matplotlib.get_backend()
    try:
        paths = draw(Path(directory), name)
    finally:
        if matplotlib.get_backend() != backend:
            matplotlib.use(backend)
    if not paths:
        raise NnexpError(f"{directory}: nothing to draw for {name}")
    image = matplotlib.image.imread(paths[0])
    dpi = 100
    figure = new_figure(figsize=(image.shape[1] / dpi, image.shape[0] / dpi), dpi=dpi)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.imshow(image)
    axes.set_axis_off()
    return figure
