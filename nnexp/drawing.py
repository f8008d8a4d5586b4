"""What ``nnexp-plot`` draws for a run dir (``nnexp.plots``) or a sweep dir (``nnexp.sweeps.summary``):
above both packages, so that neither imports the other's reader."""

from __future__ import annotations

from pathlib import Path

from nnexp.artifacts import Run
from nnexp.errors import DataError
from nnexp.metrics import RunRecord
from nnexp.models.cnn import is_convolutional
from nnexp.plots import run_plots
from nnexp.plots.background import wait_for_drawing
from nnexp.results import CONFIG_FILE, HISTORY_FILE, METRICS_FILE, MODEL_FILE
from nnexp.sweeps.grid import SWEEP_RECORD


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
    if kind == "all":
        return run_plots.write_run_plots(run.path)
    bundle = run.bundle
    if kind == "curves":
        return [run_plots.plot_curves(run, run.path / "curves.png")]
    if kind == "confusion":
        if not bundle.is_classification:
            raise DataError("confusion needs a classification run")
        return [run_plots.plot_confusion(run, run.path / "confusion.png")]
    if kind == "boundary":
        if bundle.input_shape != (2,) or not bundle.is_classification:
            raise DataError(f"boundary needs 2-D classification data; this run's data has shape {bundle.input_shape}")
        return [run_plots.plot_boundary(run, run.path / "boundary.png")]
    if kind == "fit":
        if bundle.is_classification:
            raise DataError("fit needs a regression run")
        plot = run_plots.plot_fit_1d if bundle.input_shape == (1,) else run_plots.plot_predicted_vs_true
        return [plot(run, run.path / "fit.png")]
    if kind == "weights":
        if is_convolutional(run.network) or not run_plots.linear_layers(run.network):
            raise DataError("weights needs an MLP run (a CNN's first layer: filters)")
        return [run_plots.plot_weights(run, run.path / "weights.png")]
    if kind == "filters":
        layers = run_plots.conv_layers(run.network)
        if not layers:
            raise DataError("filters needs a CNN run")
        return [run_plots.plot_filters(run, run.path / ("filters.png" if n == 1 else f"filters_conv{n}.png"), n) for n in range(1, min(2, len(layers)) + 1)]
    if kind == "features":
        if not is_convolutional(run.network):
            raise DataError("features needs a CNN run")
        return [run_plots.plot_features(run, run.path / "features.png", image)]
    raise DataError(f"{kind} is a sweep figure; give a sweep dir")
