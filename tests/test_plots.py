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
from nnexp.plots.cli import draw


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
    assert page.count("data:image/png;base64,") == 2 and page.count("<tr class=") == 2


@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")), reason="no headless Chromium")
def test_report_renders_in_headless_chromium(sweep_dir, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--no-first-run", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=3000",
         "--dump-dom", (sweep_dir / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120,
    ).stdout
    assert 'data-images-loaded="2"' in dom and 'data-table-rows="2"' in dom
    assert "<table" in dom and "hidden_sizes" in dom


@pytest.fixture
def saved_figures(monkeypatch):
    """Every matplotlib figure as it is saved (nnexp closes its figures after saving them)."""
    from matplotlib.figure import Figure

    figures = {}
    real_savefig = Figure.savefig

    def savefig(fig, path, *args, **kwargs):
        name = Path(path).name.removeprefix(".").removesuffix(".tmp.png")
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
    problems = []
    for text in fig.findobj(Text):
        if text.get_visible() and text.get_text().strip():
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
