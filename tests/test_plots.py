"""Figures drawn from run and sweep dirs."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnexp.artifacts import Run
from nnexp.errors import DataError
from nnexp.plots import run_plots
from nnexp.drawing import draw


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize(
    "overrides,expected",
    [
        (("data=moons", "optim=lbfgs"), {"curves.png": (1000, 400), "confusion.png": (450, 400), "boundary.png": (650, 550)}),
        (("data=wave", "model.hidden_sizes=[20]", "optim=lbfgs"), {"curves.png": (1000, 400), "fit.png": (700, 450)}),
        (("data=diabetes", "optim=lbfgs"), {"fit.png": (550, 500)}),
        (("data=digits_images", "model=cnn_small", "trainer.max_epochs=2"),
         {"confusion.png": (750, 700), "filters.png": (1080, 200), "filters_conv2.png": (1080, 200), "features.png": (960, 435)}),
    ],
)
def test_every_run_plot_is_a_png_of_the_expected_size(overrides, expected, run_nnexp):
    metrics = run_nnexp(*overrides, "plots=true")
    for name, size in expected.items():
        assert png_size(Path(metrics["run_dir"]) / name) == size, name


def test_linear_boundary_lies_where_the_weights_say(run_nnexp):
    metrics = run_nnexp("data=blobs", "data.generator.centers=2", "data.generator.cluster_std=1.0", "model=logistic", "optim=lbfgs")
    run = Run(Path(metrics["run_dir"]))
    xx, yy, points = run_plots.boundary_grid(run.bundle, 80)
    plotted = run.probabilities(points) > 0.5
    state, scaling = run.saved["state_dict"], run.saved["scaling"]["features"]
    weight, bias = state["out.weight"].numpy()[0], float(state["out.bias"])
    by_hand = ((points - scaling["mean"]) / scaling["scale"]) @ weight + bias > 0
    assert np.mean(plotted == by_hand) > 0.999
    assert 0.05 < plotted.mean() < 0.95  # the line crosses the plotted window


def test_filter_grid_has_one_tile_per_filter(run_nnexp):
    metrics = run_nnexp("data=digits_images", "model=cnn_small", "model.blocks.0.filters=6", "trainer.max_epochs=1")
    run = Run(Path(metrics["run_dir"]))
    figure = run_plots.filter_figure(run, 1)
    assert sum(1 for ax in figure.axes if ax.images) == 6
    assert sum(1 for ax in run_plots.filter_figure(run, 2).axes if ax.images) == 8


def test_plots_false_never_imports_matplotlib(run_nnexp, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # any import of it would now fail
    metrics = run_nnexp("data=moons", "plots=false")
    assert metrics["status"] == "ok"
    assert not (Path(metrics["run_dir"]) / "curves.png").exists()


def test_a_sweep_with_plots_false_draws_nothing_and_never_imports_matplotlib(tmp_path, monkeypatch, capsys):
    """plots=false holds for the sweep too: its summary and a report of tables, no figure, no
    drawing process, and no matplotlib (the refit included)."""
    from hydra.core.global_hydra import GlobalHydra

    import nnexp.runner  # noqa: F401  (Lightning's own imports bring matplotlib where it is installed)
    from nnexp import cli

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # any import of it by nnexp would now fail
    monkeypatch.chdir(tmp_path)
    GlobalHydra.instance().clear()
    monkeypatch.setattr(sys, "argv", ["nnexp", "-m", "hydra.sweep.dir=sweep", "quiet=true", "logger=none", "plots=false",
                                      "refit=true", "data=moons", "trainer.max_epochs=2", "regularization.alpha=0.1,1"])
    cli.main()
    sweep = tmp_path / "sweep"
    assert "drawing in the background" not in capsys.readouterr().out
    assert (sweep / "summary.csv").is_file() and (sweep / "refit" / "metrics.json").is_file()
    report = (sweep / "report.html").read_text()
    assert "<table" in report and "data:image/png" not in report
    assert not list(sweep.rglob("*.png")) and not (sweep / "figures.log").exists()


def test_nnexp_plot_redraws_and_refuses_what_does_not_apply(run_nnexp):
    metrics = run_nnexp("data=diabetes", "optim=lbfgs", "plots=false")
    run_dir = Path(metrics["run_dir"])
    assert draw(run_dir, "curves") == [run_dir / "curves.png"]
    with pytest.raises(DataError, match=r"boundary needs 2-D classification data; this run's data has shape \(10,\)"):
        draw(run_dir, "boundary")
    with pytest.raises(DataError, match="filters needs a CNN run"):
        draw(run_dir, "filters")


@pytest.fixture
def sweep_dir(tmp_path, monkeypatch):
    from hydra.core.global_hydra import GlobalHydra

    from nnexp import cli

    monkeypatch.chdir(tmp_path)
    GlobalHydra.instance().clear()
    monkeypatch.setattr(sys, "argv", ["nnexp", "-m", "hydra.sweep.dir=sweep", "quiet=true", "logger=none", "data=moons",
                                      "hydra.callbacks.sweep_summary.figures=foreground",
                                      "optim=lbfgs", "model.hidden_sizes=[2],[10]", "seed=0,1"])
    cli.main()
    return tmp_path / "sweep"


def test_sweep_on_2d_data_gets_a_boundary_panel_and_a_report(sweep_dir):
    assert png_size(sweep_dir / "boundaries.png")[0] > 500
    assert png_size(sweep_dir / "sweep_model_hidden_sizes.png") == (640, 420)
    page = (sweep_dir / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and page.count("<tr class=") == 2  # score curve, learning curves, boundaries


@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")), reason="no headless Chromium")
def test_report_renders_in_headless_chromium(sweep_dir, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--no-first-run", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=3000",
         "--dump-dom", (sweep_dir / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120,
    ).stdout
    assert 'data-images-loaded="3"' in dom and 'data-table-rows="2"' in dom
    assert "<table" in dom and "hidden_sizes" in dom


@pytest.fixture
def saved_figures(monkeypatch):
    """Every matplotlib figure as it is saved (nnexp closes its figures after saving them)."""
    from matplotlib.figure import Figure

    figures = {}
    real_savefig = Figure.savefig

    def savefig(fig, path, *args, **kwargs):
        name = Path(path).name.removeprefix(".").rsplit(".", 2)[0]  # .<name>.<random>.tmp: written atomically
        figures[name] = fig
        return real_savefig(fig, path, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return figures


def layout_problems(fig) -> list[str]:
    """Visible text that leaves the figure, and a figure title that overlaps a panel's title."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    canvas = FigureCanvasAgg(fig)  # a closed figure keeps no canvas of its own
    canvas.draw()
    renderer = canvas.get_renderer()
    bounds = fig.bbox.padded(1)
    undrawn = set()  # labels of ticks outside an axis's view, which matplotlib does not draw
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            for tick, location in zip(axis.get_major_ticks(), axis.get_majorticklocs()):
                if not low - 1e-9 <= location <= high + 1e-9:
                    undrawn.update({id(tick.label1), id(tick.label2)})
    problems = []
    for text in fig.findobj(Text):
        if text.get_visible() and text.get_text().strip() and id(text) not in undrawn:
            box = text.get_window_extent(renderer)
            if not (bounds.contains(box.x0, box.y0) and bounds.contains(box.x1, box.y1)):
                problems.append(f"outside the figure: {text.get_text()!r}")
    if fig._suptitle is not None and fig._suptitle.get_text():
        title = fig._suptitle.get_window_extent(renderer)
        for ax in fig.axes:
            if ax.title.get_text() and ax.title.get_window_extent(renderer).overlaps(title):
                problems.append(f"figure title overlaps {ax.title.get_text()!r}")
    return problems


@pytest.mark.parametrize("data", ["iris", "digits"])
def test_confusion_matrix_keeps_its_colour_bar_label_inside(run_nnexp, saved_figures, data):
    metrics = run_nnexp(f"data={data}", "plots=false")
    draw(Path(metrics["run_dir"]), "confusion")
    fig = saved_figures["confusion.png"]
    assert layout_problems(fig) == []
    assert [ax.get_ylabel() for ax in fig.axes] == ["true class", "count"]


def test_boundary_panels_and_the_categorical_sweep_curve(sweep_dir, saved_figures):
    draw(sweep_dir, "all")
    panel = saved_figures["boundaries.png"]
    assert layout_problems(panel) == []
    titled = [ax.title.get_text().split("\n")[0] for ax in panel.axes if ax.title.get_text()]
    assert sorted(titled) == sorted(f"hidden_sizes={h}, seed={s}" for h in ("[2]", "[10]") for s in (0, 1))
    assert panel.axes[-1].get_ylabel() == "P(class 1) or class"  # the colour bar
    curve = saved_figures["sweep_model_hidden_sizes.png"]
    assert layout_problems(curve) == []
    ax = curve.axes[0]
    assert [label.get_text() for label in ax.get_xticklabels()] == ["[2]", "[10]"]  # the sweep's order, not the rank's
    scores = [line for line in ax.get_lines() if line.get_marker() == "o"]  # train and objective points
    assert len(scores) == 2 and all(line.get_linestyle() == "None" for line in scores)  # no line across categories


def test_nnexp_plot_grid_refuses_data_without_two_features(tmp_path, monkeypatch):
    from hydra.core.global_hydra import GlobalHydra

    from nnexp import cli

    monkeypatch.chdir(tmp_path)
    GlobalHydra.instance().clear()
    monkeypatch.setattr(sys, "argv", ["nnexp", "-m", "hydra.sweep.dir=sweep", "quiet=true", "logger=none", "plots=false",
                                      "data=breast_cancer", "trainer.max_epochs=2", "regularization.alpha=0.1,1"])
    cli.main()
    with pytest.raises(DataError, match=r"needs 2-D classification data; this sweep's data has shape \(30,\)"):
        draw(tmp_path / "sweep", "grid")


def test_nnexp_plot_waits_for_the_background_drawing(run_nnexp):
    """The CLI draws a run's figures in a detached process; nnexp-plot waits until it is done."""
    from nnexp.plots.background import MARKER, start_drawing

    metrics = run_nnexp("data=moons", "plots=false")
    run_dir = Path(metrics["run_dir"])
    start_drawing(run_dir, "nnexp.plots.run_plots", "plots.log")
    assert (run_dir / MARKER).is_file()
    draw(run_dir, "curves")
    # Only the background process draws these: they are there because draw() waited for it.
    assert (run_dir / "boundary.png").is_file() and (run_dir / "confusion.png").is_file()
    assert not (run_dir / MARKER).exists() and (run_dir / "plots.log").read_text() == ""


def test_sweep_learning_curves_average_each_grid_point(tmp_path, monkeypatch, saved_figures):
    """One line per grid point, the per-epoch mean over its seeds, with a band; nnexp-plot SWEEP curves draws it."""
    import csv as csv_module

    from hydra.core.global_hydra import GlobalHydra

    from nnexp import cli

    monkeypatch.chdir(tmp_path)
    GlobalHydra.instance().clear()
    monkeypatch.setattr(sys, "argv", ["nnexp", "-m", "hydra.sweep.dir=sweep", "quiet=true", "logger=none", "plots=false",
                                      "data=iris", "stopping=none", "trainer.max_epochs=4", "optim=adam,sgd", "seed=0,1"])
    cli.main()
    assert draw(tmp_path / "sweep", "curves") == [tmp_path / "sweep" / "learning_curves.png"]
    fig = saved_figures["learning_curves.png"]
    assert layout_problems(fig) == []
    loss_ax, score_ax = fig.axes
    assert (loss_ax.get_title(), score_ax.get_title(), loss_ax.get_xlabel()) == ("training loss (with penalty)", "training score", "epoch")
    lines = {line.get_label(): line.get_ydata() for line in loss_ax.get_lines()}
    assert set(lines) == {"optim=adam", "optim=sgd"} and len(loss_ax.collections) == 2  # a band each
    for optim in ("adam", "sgd"):
        histories = []
        for job in (tmp_path / "sweep").glob("[0-9]*"):
            if f"optim={optim}" in (job / ".hydra" / "overrides.yaml").read_text():
                histories.append([float(row["train_loss"]) for row in csv_module.DictReader((job / "history.csv").open())])
        assert len(histories) == 2
        np.testing.assert_allclose(lines[f"optim={optim}"], np.mean(histories, axis=0))


@pytest.mark.parametrize("overrides, panels, images", [
    (("data=digits", "regularization=l1", "regularization.l1=0.01"), ["dense1: 64x100", "out: 100x10"], 0),
    (("data=digits_images", "model.hidden_sizes=[20,12]"), ["dense1: 64x20", "dense2: 20x12", "out: 12x10"], 16),
])
def test_mlp_weights_picture_has_a_histogram_per_layer_and_first_layer_images(run_nnexp, saved_figures, overrides, panels, images):
    metrics = run_nnexp(*overrides, "plots=true", "trainer.max_epochs=5")
    assert (Path(metrics["run_dir"]) / "weights.png").is_file()
    fig = saved_figures["weights.png"]
    assert layout_problems(fig) == []
    histograms = [ax for ax in fig.axes if ax.get_xlabel() == "weight"]
    assert [ax.get_title().split("\n")[0] for ax in histograms] == panels
    run = Run(Path(metrics["run_dir"]))
    first = run.network.dense1.weight.detach().numpy()
    assert sum(patch.get_height() for patch in histograms[0].patches) == first.size  # every weight counted once
    assert len([ax for ax in fig.axes if ax.get_title().startswith("unit ")]) == images


def test_nnexp_plot_draws_the_curves_of_a_run_still_training(run_nnexp, saved_figures):
    """Before metrics.json exists, history.csv (written epoch by epoch) is enough for the curves."""
    metrics = run_nnexp("data=iris", "plots=false", "trainer.max_epochs=4", "stopping=none")
    run_dir = Path(metrics["run_dir"])
    (run_dir / "metrics.json").unlink()  # as during training
    assert draw(run_dir, "curves") == [run_dir / "curves.png"]
    loss_ax, _ = saved_figures["curves.png"].axes
    assert list(loss_ax.get_lines()[0].get_ydata()) == [row["train_loss"] for row in Run(run_dir).history]
    with pytest.raises(DataError, match="still training"):
        draw(run_dir, "confusion")


def test_heatmap_of_two_keys_says_what_it_scored(tmp_path, monkeypatch, saved_figures):
    from hydra.core.global_hydra import GlobalHydra

    from nnexp import cli

    monkeypatch.chdir(tmp_path)
    GlobalHydra.instance().clear()
    monkeypatch.setattr(sys, "argv", ["nnexp", "-m", "hydra.sweep.dir=sweep", "quiet=true", "logger=none", "plots=false",
                                      "data=iris", "trainer.max_epochs=2", "regularization.alpha=0.1,1", "model.hidden_sizes=[3],[5]"])
    cli.main()
    draw(tmp_path / "sweep", "all")
    fig = saved_figures["sweep_heatmap.png"]
    assert layout_problems(fig) == []
    ax = fig.axes[0]
    assert ax.get_title() == "mean training score\n(no validation split)"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("model.hidden_sizes", "regularization.alpha")
    assert [label.get_text() for label in ax.texts].count("") == 0 and len(ax.texts) == 4  # a value in every cell


def test_learning_curve_legend_of_an_optuna_study_fits_the_figure(tmp_path, saved_figures):
    """Optuna's trial values (0.016352949355839833) are shortened to 3 significant digits, a line a
    key, and the legend stays inside the figure."""
    from nnexp.plots.sweep import plot_learning_curves
    from nnexp.sweeps.summary import legend_label

    keys = ["regularization.alpha", "optim.lr", "model.hidden_sizes"]
    assert legend_label(keys, ("0.016352949355839833", "0.00123456", "[50, 50]")) == "alpha=0.0164\nlr=0.00123\nhidden_sizes=[50, 50]"
    assert legend_label(["optim"], ("adam",)) == "optim=adam" and legend_label(["seed"], ("3",)) == "seed=3"
    history = [{"train_loss": 1.0 / epoch, "train_score": 0.5} for epoch in range(1, 6)]
    groups = [(legend_label(keys, (str(0.1 / 7 ** n), str(1e-4 * 3 ** n), "[100]")), [history]) for n in range(6)]
    plot_learning_curves(groups, tmp_path / "learning_curves.png")
    assert layout_problems(saved_figures["learning_curves.png"]) == []


def test_report_shows_an_optuna_value_to_4_digits_with_the_exact_one_in_its_tooltip(tmp_path):
    from nnexp.plots.report import write_report

    rows = [{"rank_val_score": 1, "param_regularization.alpha": "0.016352949355839832", "param_optim.lr": "1e-3",
             "param_model.hidden_sizes": "[50,50]", "mean_val_score": 0.98, "best_job": 0, "command": "nnexp ..."}]
    page = write_report(tmp_path, rows, ["regularization.alpha", "optim.lr", "model.hidden_sizes"], []).read_text()
    assert '<td><span title="0.016352949355839832">0.01635</span></td>' in page
    assert "<td>1e-3</td>" in page and "<td>[50,50]</td>" in page  # already short: as written
