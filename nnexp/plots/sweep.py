"""Sweep figures: score against one swept parameter, or a heatmap over two."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from nnexp.plots import pyplot, save_figure

SCORE_CMAP = "viridis"


def as_number(value: str) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def is_log_scale(values: list[float | None]) -> bool:
    """Positive numbers spanning two decades or more (alpha, lr) read best on a log axis."""
    if any(v is None or v <= 0 for v in values) or len(values) < 3:
        return False
    return max(values) / min(values) >= 100


def _sorted_points(rows: list[dict], key: str):
    """(value, row) pairs in the value's order: by number, or as the sweep listed categories
    (hidden sizes, optimisers), never by rank; and whether the values are numbers."""
    points = [(row[f"param_{key}"], row) for row in rows]
    numbers = [as_number(value) for value, _ in points]
    if all(n is not None for n in numbers):
        return sorted(points, key=lambda p: as_number(p[0])), True
    return sorted(points, key=lambda p: int(p[1].get("grid_index", 0))), False


def plot_param_curve(rows: list[dict], key: str, path: Path) -> Path:
    """Validation score (mean ± std) and training score against one swept parameter."""
    plt = pyplot()
    points, numeric = _sorted_points(rows, key)
    labels = [value for value, _ in points]
    xs = [as_number(value) for value in labels] if numeric else list(range(len(labels)))
    val = np.array([row["mean_val_score"] for _, row in points], dtype=float)
    std = np.array([row["std_val_score"] for _, row in points], dtype=float)
    train = np.array([row["mean_train_score"] for _, row in points], dtype=float)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    # Fixed margins: tight or constrained layout would draw the figure an extra time (2x the cost).
    fig.subplots_adjust(left=0.11, right=0.98, top=0.92, bottom=0.14 if numeric else 0.24)
    # Categories (hidden sizes, optimisers) get points only: a line would suggest values between them.
    ax.plot(xs, train, "o--" if numeric else "o", color="tab:orange", label="train")
    scored = {row.get("scored_on", "val") for _, row in points}
    label = "validation (mean ± std)" if scored == {"val"} else "objective: train score where no validation split (mean ± std)"
    ax.errorbar(xs, val, yerr=np.nan_to_num(std), fmt="o-" if numeric else "o", color="tab:blue", capsize=3, label=label)
    best = int(np.nanargmax(val)) if np.isfinite(val).any() else None
    if best is not None:
        ax.axvline(xs[best], color="grey", linestyle=":", label=f"best {key}={labels[best]}")
    if numeric and is_log_scale(xs):
        ax.set_xscale("log")
    if not numeric:
        ax.set_xticks(xs, labels, rotation=30, ha="right")
    ax.set_xlabel(key)
    ax.set_ylabel("score")
    ax.set_title(f"score against {key}")
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path, 100)


def plot_heatmap(rows: list[dict], keys: list[str], path: Path) -> Path:
    """Mean validation score over two swept parameters, with the values written in the cells."""
    plt = pyplot()
    first, second = keys
    ys = [value for value, _ in _sorted_points(rows, first)[0]]
    xs = [value for value, _ in _sorted_points(rows, second)[0]]
    ys, xs = list(dict.fromkeys(ys)), list(dict.fromkeys(xs))
    grid = np.full((len(ys), len(xs)), np.nan)
    for row in rows:
        grid[ys.index(row[f"param_{first}"]), xs.index(row[f"param_{second}"])] = row["mean_val_score"]
    fig, ax = plt.subplots(figsize=(1.2 * len(xs) + 2.5, 0.7 * len(ys) + 2), layout="constrained")
    image = ax.imshow(grid, cmap=SCORE_CMAP, aspect="auto")
    for i in range(len(ys)):
        for j in range(len(xs)):
            if not math.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.3f}", ha="center", va="center", color="white" if grid[i, j] < np.nanmean(grid) else "black", fontsize=8)
    ax.set_xticks(range(len(xs)), xs, rotation=30, ha="right")
    ax.set_yticks(range(len(ys)), ys)
    ax.set_xlabel(second)
    ax.set_ylabel(first)
    scored = {row.get("scored_on", "val") for row in rows}
    ax.set_title("mean validation score" if scored == {"val"} else "mean training score\n(no validation split)")
    fig.colorbar(image, ax=ax, label="score")
    return save_figure(fig, path, 100)


def mean_curve(curves: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Per-epoch mean and std over curves of different lengths (each epoch over the curves that reached it)."""
    length = max(len(curve) for curve in curves)
    table = np.full((len(curves), length), np.nan)
    for number, curve in enumerate(curves):
        table[number, : len(curve)] = curve
    counts = np.sum(~np.isnan(table), axis=0)
    mean = np.nansum(table, axis=0) / counts
    return mean, np.sqrt(np.nansum((table - mean) ** 2, axis=0) / counts)


def plot_learning_curves(groups: list[tuple[str, list[list[dict]]]], path: Path, step_name: str = "epoch") -> Path:
    """One line per grid point (``(label, histories)``; a history per seed and fold) with a
    mean ± std band: the training loss, and the validation score where the fits had one
    (else the training score). Grid points are coloured in the sweep's order."""
    plt = pyplot()
    has_val = all("val_score" in history[0] for _, histories in groups for history in histories if history)
    score = "val_score" if has_val else "train_score"
    fig, (loss_ax, score_ax) = plt.subplots(1, 2, figsize=(11, 4.4))
    fig.subplots_adjust(left=0.07, right=0.8, bottom=0.13, top=0.85, wspace=0.25)
    colours = plt.get_cmap(SCORE_CMAP)(np.linspace(0.0, 0.9, max(len(groups), 1)))
    for (label, histories), colour in zip(groups, colours):
        for ax, metric in ((loss_ax, "train_loss"), (score_ax, score)):
            curves = [[row[metric] for row in history] for history in histories if history]
            if not curves:
                continue
            mean, std = mean_curve(curves)
            steps = np.arange(1, len(mean) + 1)
            ax.plot(steps, mean, color=colour, label=label, marker="o" if len(mean) < 10 else None, markersize=4)  # a one-epoch fit is a point
            ax.fill_between(steps, mean - std, mean + std, color=colour, alpha=0.2, linewidth=0)
    for ax, title in ((loss_ax, "training loss (with penalty)"), (score_ax, "validation score" if has_val else "training score")):
        ax.set_title(title)
        ax.set_xlabel(step_name)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    score_ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
    fig.suptitle("learning curves across the sweep (mean ± std over seeds and folds)")
    return save_figure(fig, path, 100)


def plot_sweep(rows: list[dict], keys: list[str], sweep_dir: Path) -> list[Path]:
    """The sweep's figures next to summary.csv: a curve for one parameter, a heatmap for two."""
    sweep_dir = Path(sweep_dir)
    if len(keys) == 1:
        return [plot_param_curve(rows, keys[0], sweep_dir / f"sweep_{keys[0].replace('.', '_')}.png")]
    if len(keys) == 2:
        return [plot_heatmap(rows, keys, sweep_dir / "sweep_heatmap.png")]
    return []
