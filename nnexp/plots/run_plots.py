"""Figures of one run, drawn from its run dir (config, history, model.pt): no retraining."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import torch

from nnexp.artifacts import Run
from nnexp.models.activations import ACTIVATIONS
from nnexp.plots import new_figure, save_figure

DPI = 100
PROBABILITY_CMAP = "RdBu_r"  # binary boundaries: P(class 1)
CLASS_CMAP = "tab10"         # class colours everywhere
MATRIX_CMAP = "Blues"        # confusion matrices
WEIGHT_CMAP = "coolwarm"     # filters: negative blue, positive red, centred on 0
ACTIVATION_CMAP = "viridis"  # feature maps


def describe(run: Run) -> str:
    """A short title naming the data, the architecture and the main knobs."""
    model = run.config.model
    arch = f"{model.get('hidden_sizes', [])}" if "blocks" not in model else f"CNN {[b['filters'] for b in model.blocks]}"
    alpha = run.config.get("regularization", {}).get("alpha", 0)
    return f"{run.metrics.data}: {arch} {model.get('activation', '')}, alpha={alpha:g}, seed={run.config.seed}"


def save(fig, path: Path) -> Path:
    return save_figure(fig, path, DPI)


def plot_curves(run: Run, path: Path) -> Path:
    """``curves_figure`` as a PNG at ``path``."""
    return save(curves_figure(run), path)


def curves_figure(run: Run):
    """Loss and score per epoch (per iteration for L-BFGS), training and validation."""
    history = run.history
    epochs = [row["epoch"] for row in history]
    step_name = "iteration" if run.metrics.fit is not None and run.metrics.fit.iterations is not None else "epoch"
    fig = new_figure(figsize=(10, 4))
    loss_ax, score_ax = fig.subplots(1, 2)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.85, wspace=0.25)
    for ax, metric in ((loss_ax, "loss"), (score_ax, "score")):
        for split, style in (("train", "-"), ("val", "--")):
            values = [row.get(f"{split}_{metric}", float("nan")) for row in history]
            if not all(math.isnan(v) for v in values):
                ax.plot(epochs, values, style, label=split)
        ax.set_xlabel(step_name)
        ax.xaxis.get_major_locator().set_params(integer=True)  # no fractional epochs (1.25) on short runs
        ax.set_ylabel(metric if metric == "loss" else run.metrics.score_name or "score")
        ax.grid(alpha=0.3)
        ax.legend()
    loss_ax.set_title("loss (train includes the penalty)")
    score_ax.set_title(f"{run.metrics.score_name or 'score'}")
    fig.suptitle(f"learning curves: {describe(run)}")
    return fig


def plot_confusion(run: Run, path: Path) -> Path:
    """``confusion_figure`` as a PNG at ``path``."""
    return save(confusion_figure(run), path)


def confusion_figure(run: Run):
    """Confusion matrix on the test split, with counts in the cells."""
    from sklearn.metrics import confusion_matrix

    bundle = run.bundle
    predicted = run.predict(bundle.X_test)
    matrix = confusion_matrix(bundle.y_test, predicted, labels=range(len(bundle.classes)))
    size = max(4.5, 0.45 * len(bundle.classes) + 3)
    fig = new_figure(figsize=(size, size - 0.5))
    ax = fig.subplots()
    # The colour bar takes its room from the matrix's axes: leave 0.6 inch for its ticks and label.
    fig.subplots_adjust(left=0.18, right=1 - 0.6 / size, bottom=0.15, top=0.88)
    image = ax.imshow(matrix, cmap=MATRIX_CMAP)
    for i in range(len(matrix)):
        for j in range(len(matrix)):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    labels = [str(c) for c in bundle.classes]
    ax.set_xticks(range(len(labels)), labels, rotation=45 if len(labels) > 4 else 0)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    # The title gives metrics.json's test score. The matrix counts the saved model's predictions in
    # float32 on the CPU; a run scored under bf16 autocast may differ by a row, and then says so.
    accuracy = float(np.mean(predicted == bundle.y_test))
    recorded = run.test_score if run.test_score is not None else accuracy
    note = "" if f"{recorded:.4f}" == f"{accuracy:.4f}" else f"\n(matrix from the saved model in float32: {accuracy:.4f})"
    ax.set_title(f"test confusion matrix, accuracy {recorded:.4f}{note}")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="count")
    return fig


def plot_predicted_vs_true(run: Run, path: Path) -> Path:
    """``predicted_vs_true_figure`` as a PNG at ``path``."""
    return save(predicted_vs_true_figure(run), path)


def predicted_vs_true_figure(run: Run):
    """Regression: predicted against true values on the test split, with the diagonal."""
    bundle = run.bundle
    predicted = run.predict(bundle.X_test).reshape(len(bundle.y_test), -1)[:, 0]
    true = bundle.y_test.reshape(len(bundle.y_test), -1)[:, 0]
    fig = new_figure(figsize=(5.5, 5))
    ax = fig.subplots()
    fig.subplots_adjust(left=0.15, right=0.95, bottom=0.12, top=0.9)
    ax.scatter(true, predicted, s=14, alpha=0.7)
    low, high = float(min(true.min(), predicted.min())), float(max(true.max(), predicted.max()))
    ax.plot([low, high], [low, high], "k--", linewidth=1, label="perfect")
    ax.set_xlabel(f"true {bundle.target_name}")
    ax.set_ylabel(f"predicted {bundle.target_name}")
    ax.set_title(f"test R2 {run.test_score:.4f}")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def plot_fit_1d(run: Run, path: Path) -> Path:
    """``fit_1d_figure`` as a PNG at ``path``."""
    return save(fit_1d_figure(run), path)


def fit_1d_figure(run: Run):
    """1-D regression: training and test points and the fitted curve."""
    bundle = run.bundle
    low, high = bundle.X_train.min(), bundle.X_train.max()
    margin = 0.05 * (high - low)
    grid = np.linspace(low - margin, high + margin, 400)[:, None]
    fig = new_figure(figsize=(7, 4.5))
    ax = fig.subplots()
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.12, top=0.9)
    ax.scatter(bundle.X_train[:, 0], bundle.y_train, s=14, label="train", color="tab:blue", alpha=0.7)
    ax.scatter(bundle.X_test[:, 0], bundle.y_test, s=18, marker="^", label="test", color="tab:orange")
    ax.plot(grid[:, 0], run.predict(grid).reshape(len(grid), -1)[:, 0], color="black", linewidth=2, label="fitted")
    ax.set_xlabel(bundle.feature_names[0] if bundle.feature_names else "x")
    ax.set_ylabel(bundle.target_name)
    ax.set_title(f"{describe(run)}\ntest R2 {run.test_score:.4f}", fontsize=10)
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def boundary_grid(bundle, resolution: int = 200):
    X = np.vstack([bundle.X_train, bundle.X_test])
    low, high = X.min(axis=0), X.max(axis=0)
    margin = 0.1 * (high - low)
    xs = np.linspace(low[0] - margin[0], high[0] + margin[0], resolution)
    ys = np.linspace(low[1] - margin[1], high[1] + margin[1], resolution)
    xx, yy = np.meshgrid(xs, ys)
    return xx, yy, np.column_stack([xx.ravel(), yy.ravel()])


def draw_boundary(ax, run: Run, resolution: int = 200, title: str | None = None):
    """Predicted probability (binary) or class (multiclass) as filled contours, with the training
    (circles) and test (triangles) points; returns the contour set for a colour bar."""
    import matplotlib
    from matplotlib.colors import ListedColormap

    bundle = run.bundle
    xx, yy, points = boundary_grid(bundle, resolution)
    if bundle.task == "binary":
        surface = run.probabilities(points).reshape(xx.shape)
        contours = ax.contourf(xx, yy, surface, levels=np.linspace(0, 1, 11), cmap=PROBABILITY_CMAP, alpha=0.75)
        ax.contour(xx, yy, surface, levels=[0.5], colors="k", linewidths=1)
        colours = ListedColormap(["#2166ac", "#b2182b"])
    else:
        k = len(bundle.classes)
        surface = run.predict(points).reshape(xx.shape)
        colours = ListedColormap(matplotlib.colormaps[CLASS_CMAP].colors[:k])
        contours = ax.contourf(xx, yy, surface, levels=np.arange(k + 1) - 0.5, cmap=colours, alpha=0.35)
    ax.scatter(bundle.X_train[:, 0], bundle.X_train[:, 1], c=bundle.y_train, cmap=colours, s=12, edgecolors="k", linewidths=0.3,
               vmin=0, vmax=max(1, len(bundle.classes) - 1))
    ax.scatter(bundle.X_test[:, 0], bundle.X_test[:, 1], c=bundle.y_test, cmap=colours, s=22, marker="^", edgecolors="k",
               linewidths=0.5, vmin=0, vmax=max(1, len(bundle.classes) - 1))
    ax.set_title(title or f"test accuracy {run.test_score:.3f}", fontsize=9)
    return contours


def plot_boundary(run: Run, path: Path) -> Path:
    """``boundary_figure`` as a PNG at ``path``."""
    return save(boundary_figure(run), path)


def boundary_figure(run: Run):
    """The decision boundary of a 2-D classifier, titled with its parameters and test score."""
    fig = new_figure(figsize=(6.5, 5.5))
    ax = fig.subplots()
    fig.subplots_adjust(left=0.1, right=0.9, bottom=0.1, top=0.88)
    contours = draw_boundary(ax, run, title=f"{describe(run)}\ntest accuracy {run.test_score:.3f}")
    names = run.bundle.feature_names or ["x0", "x1"]
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    fig.colorbar(contours, ax=ax, label="P(class 1)" if run.bundle.task == "binary" else "predicted class")
    return fig


def conv_layers(network: torch.nn.Module) -> list[tuple[str, torch.nn.Conv2d]]:
    """The network's conv layers by name, in order (none for an MLP: see ``is_convolutional``)."""
    return [(name, layer) for name, layer in network.named_modules() if isinstance(layer, torch.nn.Conv2d)]


def plot_filters(run: Run, path: Path, layer_number: int = 1) -> Path:
    """One tile per filter of a conv layer (averaged over its input channels), centred on zero."""
    return save(filter_figure(run, layer_number), path)


def filter_figure(run: Run, layer_number: int = 1):
    """The filter grid of conv layer ``layer_number`` (1-based) as a matplotlib figure."""
    layers = conv_layers(run.network)
    if layer_number > len(layers):
        raise ValueError(f"the network has {len(layers)} conv layers")
    name, layer = layers[layer_number - 1]
    weights = layer.weight.detach().mean(dim=1).numpy()  # (filters, k, k)
    count = len(weights)
    columns = min(8, count)
    rows = math.ceil(count / columns)
    fig = new_figure(figsize=(1.2 * columns + 1.2, 1.2 * rows + 0.8))
    axes = fig.subplots(rows, columns, squeeze=False)
    fig.subplots_adjust(left=0.02, right=0.86, bottom=0.02, top=0.86, wspace=0.1, hspace=0.1)
    limit = float(np.abs(weights).max()) or 1.0
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < count:
            image = ax.imshow(weights[index], cmap=WEIGHT_CMAP, vmin=-limit, vmax=limit)
    fig.colorbar(image, cax=fig.add_axes([0.88, 0.1, 0.03, 0.7]), label="weight")
    fig.suptitle(f"{name}: {count} filters {layer.kernel_size[0]}x{layer.kernel_size[1]}" + (" (mean over input channels)" if layer.in_channels > 1 else ""), fontsize=10)
    return fig


def plot_features(run: Run, path: Path, index: int = 0) -> Path:
    """``features_figure`` as a PNG at ``path``."""
    return save(features_figure(run, index), path)


@torch.no_grad()
def features_figure(run: Run, index: int = 0):
    """The feature maps of test image ``index`` after each conv block's activation, layer by layer."""
    network, bundle = run.network, run.bundle
    image = bundle.X_test[index : index + 1]
    maps, hooks = [], []
    for name, layer in network.named_modules():
        if name.startswith(tuple(ACTIVATIONS)) and "head" not in name:
            hooks.append(layer.register_forward_hook(lambda _l, _i, out, name=name: maps.append((name, out[0].numpy()))))
    network(run.scale(image))
    for hook in hooks:
        hook.remove()
    maps = [(name, m) for name, m in maps if m.ndim == 3]
    columns = 8
    rows = 1 + sum(math.ceil(len(m) / columns) for _, m in maps)
    fig = new_figure(figsize=(1.2 * columns, 1.25 * rows + 0.6))
    axes = fig.subplots(rows, columns, squeeze=False)
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.92, wspace=0.08, hspace=0.3)
    for ax in axes.flat:
        ax.axis("off")
    axes[0, 0].imshow(image[0, 0], cmap="gray")
    axes[0, 0].set_title(f"input ({bundle.classes[bundle.y_test[index]]})", fontsize=8)
    row = 1
    for name, feature_maps in maps:
        for number, feature_map in enumerate(feature_maps):
            ax = axes[row + number // columns, number % columns]
            ax.imshow(feature_map, cmap=ACTIVATION_CMAP)
            if number == 0:
                ax.set_title(name, fontsize=8, loc="left")
        row += math.ceil(len(feature_maps) / columns)
    fig.suptitle(f"feature maps of test image {index}", fontsize=10)
    return fig


def linear_layers(network: torch.nn.Module) -> list[tuple[str, torch.nn.Linear]]:
    return [(name, layer) for name, layer in network.named_modules() if isinstance(layer, torch.nn.Linear)]


IMAGE_UNITS = 16  # first-layer units shown as images


def plot_weights(run: Run, path: Path) -> Path:
    """``weights_figure`` as a PNG at ``path``."""
    return save(weights_figure(run), path)


def weights_figure(run: Run):
    """An MLP's weights: a histogram per dense layer (L1 piles them up at zero, L2 narrows them)
    and, for image data, the first layer's first units as images of their input weights."""
    layers = linear_layers(run.network)
    shape = tuple(run.bundle.input_shape)
    images = len(shape) == 3 and len(layers) > 1
    units = min(IMAGE_UNITS, layers[0][1].out_features) if images else 0
    columns = max(len(layers), 8 if images else 0)
    rows = 1 + (math.ceil(units / 8) if images else 0)
    width, height = max(2.6 * len(layers), 9 if images else 0) + 0.8, 3.2 + 1.25 * (rows - 1)
    fig = new_figure(figsize=(width, height))
    # Margins in inches: tick labels and axis labels fit at any number of layers.
    grid = fig.add_gridspec(rows, columns, height_ratios=[2.2] + [1] * (rows - 1), left=0.6 / width, right=1 - 0.15 / width,
                            bottom=(0.2 if images else 0.55) / height, top=1 - 0.75 / height, hspace=0.6, wspace=0.45)
    span = columns // len(layers)
    for number, (name, layer) in enumerate(layers):
        ax = fig.add_subplot(grid[0, number * span : (number + 1) * span])
        weights = layer.weight.detach().float().flatten().numpy()
        ax.hist(weights, bins=50, color="tab:blue")
        zeros = float(np.mean(np.abs(weights) < 1e-3))
        ax.set_title(f"{name}: {layer.in_features}x{layer.out_features}\n{zeros:.0%} of |w| < 1e-3", fontsize=9)
        ax.set_xlabel("weight")
        if number == 0:
            ax.set_ylabel("count")
    if images:
        first = layers[0][1].weight.detach().float().numpy()
        limit = float(np.abs(first[:units]).max()) or 1.0
        for unit in range(units):
            ax = fig.add_subplot(grid[1 + unit // 8, unit % 8])
            ax.imshow(first[unit].reshape(shape[1:]) if shape[0] == 1 else first[unit].reshape(shape).mean(0),
                      cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_title(f"unit {unit + 1}", fontsize=7)
            ax.axis("off")
    alpha = run.config.get("regularization", {})
    fig.suptitle(f"weights: {describe(run)}, l1={alpha.get('l1', 0):g}")
    return fig


def write_run_plots(run_dir: Path) -> list[Path]:
    """Every figure that applies to the run; returns their paths."""
    run = Run(Path(run_dir))
    paths = [plot_curves(run, run.path / "curves.png")]
    if run.metrics.status != "ok":
        return paths
    bundle = run.bundle
    if bundle.is_classification:
        paths.append(plot_confusion(run, run.path / "confusion.png"))
        if bundle.input_shape == (2,):
            paths.append(plot_boundary(run, run.path / "boundary.png"))
    elif bundle.input_shape == (1,):
        paths.append(plot_fit_1d(run, run.path / "fit.png"))
    else:
        paths.append(plot_predicted_vs_true(run, run.path / "fit.png"))
    layers = conv_layers(run.network)
    if not layers and linear_layers(run.network):
        paths.append(plot_weights(run, run.path / "weights.png"))
    for number in range(1, min(2, len(layers)) + 1):
        paths.append(plot_filters(run, run.path / ("filters.png" if number == 1 else f"filters_conv{number}.png"), number))
    if layers:
        paths.append(plot_features(run, run.path / "features.png"))
    return paths


if __name__ == "__main__":  # python -m nnexp.plots.run_plots RUN_DIR (the CLI's background drawing)
    from nnexp.plots.background import finish_drawing

    try:
        write_run_plots(Path(sys.argv[1]))
    finally:
        finish_drawing(Path(sys.argv[1]))
