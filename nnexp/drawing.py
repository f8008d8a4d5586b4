"""What ``nnexp-plot`` draws for a run dir (``nnexp.plots``) or a sweep dir (``nnexp.sweeps.summary``):
above both packages, so that neither imports the other's reader."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from nnexp.artifacts import Run
from nnexp.errors import DataError
from nnexp.metrics import RunRecord
from nnexp.models.cnn import is_convolutional
from nnexp.plots import run_plots
from nnexp.plots.background import wait_for_drawing
from nnexp.results import CONFIG_FILE, HISTORY_FILE, METRICS_FILE, MODEL_FILE
from nnexp.sweeps.grid import SWEEP_RECORD

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def draw(directory: Path, kind: str = "all", image: int = 0) -> list[Path]:
    """Draw ``kind`` (or every figure that applies, for ``all``) into ``directory``."""
    directory = Path(directory)
    wait_for_drawing(directory)  # a run's or sweep's figures still being drawn in the background
    if (directory / METRICS_FILE).is_file():
        return draw_run(Run(directory), kind, image)
    if (directory / HISTORY_FILE).is_file() and (directory / CONFIG_FILE).is_file():
        return [draw_training_curves(directory, kind)]
    if (directory / SWEEP_RECORD).is_file():
        from nnexp.sweeps.summary import draw_sweep_figures, read_jobs, summarise_jobs, swept_keys

        jobs = read_jobs(directory)
        if kind == "grid":
            from nnexp.plots.panels import boundary_panel

            finished = [job for job in jobs if job.status == "ok" and (job.path / MODEL_FILE).is_file()]
            if not finished:
                raise DataError(f"grid needs finished jobs with a model.pt; {directory} has none yet")
            bundle = Run(finished[0].path).bundle
            if bundle.input_shape != (2,) or not bundle.is_classification:
                raise DataError(f"grid draws each job's decision boundary and needs 2-D classification data; "
                                f"this sweep's data has shape {bundle.input_shape}")
            return [boundary_panel(jobs, swept_keys(jobs), directory / "boundaries.png")]
        rows, keys = summarise_jobs(jobs)
        if kind == "curves":
            from nnexp.sweeps.summary import draw_learning_curves

            drawn = draw_learning_curves(jobs, keys, directory)
            if drawn is None:
                raise DataError(f"curves needs finished jobs with a history.csv; {directory} has none yet")
            return [drawn]
        return draw_sweep_figures(jobs, rows, keys, directory)
    raise DataError(f"{directory} is neither a run dir ({METRICS_FILE}) nor a sweep dir ({SWEEP_RECORD})")


def draw_training_curves(directory: Path, kind: str) -> Path:
    """The learning curves of a run still training: its history.csv grows epoch by epoch."""
    if kind not in ("curves", "all"):
        raise DataError(f"{directory} is still training (no metrics.json yet): only its curves can be drawn: "
                        f"nnexp-plot {directory} curves")
    run = Run(directory)
    # None written yet: a record that names the data only.
    run.__dict__["metrics"] = RunRecord(job_key="", status="training", objective=None, data=run.config.data.get("name", "data"))
    return run_plots.plot_curves(run, directory / "curves.png")


def draw_run(run: Run, kind: str, image: int) -> list[Path]:
    """Draw ``kind`` (every figure that applies, for ``all``) into the run's dir."""
    if kind == "all":
        return run_plots.write_run_plots(run.path)
    return [run_plots.save(figure, run.path / name) for name, figure in run_figures(run, kind, image)]


RUN_KINDS = ("curves", "boundary", "fit", "confusion", "weights", "filters", "features")


def run_figures(run: Run, kind: str, image: int = 0) -> list[tuple[str, Figure]]:
    """The figures of ``kind`` for a finished run, each with its file name in the run dir
    (nothing is written)."""
    if kind == "curves":
        return [("curves.png", run_plots.curves_figure(run))]
    if kind not in RUN_KINDS:
        raise DataError(f"{kind} is a sweep figure; give a sweep dir" if kind == "grid" else
                        f"{kind} is not a figure of a run; choose one of: {', '.join(RUN_KINDS)}")
    bundle = run.bundle
    if kind == "confusion":
        if not bundle.is_classification:
            raise DataError("confusion needs a classification run")
        return [("confusion.png", run_plots.confusion_figure(run))]
    if kind == "boundary":
        if bundle.input_shape != (2,) or not bundle.is_classification:
            raise DataError(f"boundary needs 2-D classification data; this run's data has shape {bundle.input_shape}")
        return [("boundary.png", run_plots.boundary_figure(run))]
    if kind == "fit":
        if bundle.is_classification:
            raise DataError("fit needs a regression run")
        figure = run_plots.fit_1d_figure if bundle.input_shape == (1,) else run_plots.predicted_vs_true_figure
        return [("fit.png", figure(run))]
    if kind == "weights":
        if is_convolutional(run.network) or not run_plots.linear_layers(run.network):
            raise DataError("weights needs an MLP run (a CNN's first layer: filters)")
        return [("weights.png", run_plots.weights_figure(run))]
    if kind == "filters":
        layers = run_plots.conv_layers(run.network)
        if not layers:
            raise DataError("filters needs a CNN run")
        return [("filters.png" if n == 1 else f"filters_conv{n}.png", run_plots.filter_figure(run, n)) for n in range(1, min(2, len(layers)) + 1)]
    if not is_convolutional(run.network):
        raise DataError("features needs a CNN run")
    return [("features.png", run_plots.features_figure(run, image))]
