"""One figure for a sweep on 2-D data: every job's decision boundary, in a grid that follows the
swept parameters (rows: the first, columns: the rest)."""

from __future__ import annotations

import math
from itertools import product
from pathlib import Path

from nnexp.artifacts import Run
from nnexp.plots import pyplot, save_figure
from nnexp.plots.run_plots import draw_boundary
from nnexp.results import MODEL_FILE


def _ordered(values: set[str]) -> list[str]:
    try:
        return sorted(values, key=float)
    except ValueError:
        return sorted(values, key=lambda v: (len(v), v))


def boundary_panel(jobs, keys: list[str], path: Path, resolution: int = 100) -> Path:
    """Draw every finished job's boundary; rows follow ``keys[0]``, columns the other keys."""
    plt = pyplot()
    done = [job for job in jobs if job.status == "ok" and (job.path / MODEL_FILE).is_file()]
    if not keys:
        keys = []
    row_values = _ordered({job.params.get(keys[0], "") for job in done}) if keys else [""]
    column_keys = keys[1:]
    column_values = [tuple(combo) for combo in product(*[_ordered({job.params.get(k, "") for job in done}) for k in column_keys])] or [()]
    if len(keys) == 1:  # one parameter: wrap its values into a near-square grid
        columns = min(4, len(row_values))
        cells = [((value,), ()) for value in row_values]
        n_rows = math.ceil(len(cells) / columns)
    else:
        columns, n_rows = len(column_values), len(row_values)
        cells = [((r,), c) for r in row_values for c in column_values]
    width, height = 2.6 * columns + 1.3, 2.5 * n_rows + 0.9
    fig, axes = plt.subplots(n_rows, columns, figsize=(width, height), squeeze=False)
    # Margins in inches, so that the title clears the panels' two-line titles and the colour
    # bar's label fits at any grid size.
    fig.subplots_adjust(left=0.15 / width, right=1 - 1.1 / width, bottom=0.15 / height, top=1 - 0.85 / height,
                        wspace=0.15, hspace=0.45)
    contours = None
    for ax in axes.flat:
        ax.axis("off")
    for index, (row_part, column_part) in enumerate(cells):
        ax = axes.flat[index]
        wanted = dict(zip(keys, (*row_part, *column_part)))
        match = [job for job in done if all(job.params.get(k, "") == v for k, v in wanted.items())]
        if not match:
            continue
        run = Run(match[0].path)
        label = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in wanted.items())
        ax.axis("on")
        ax.set_xticks([])
        ax.set_yticks([])
        contours = draw_boundary(ax, run, resolution, title=f"{label}\ntest {run.test_score:.3f}")
    if contours is not None:
        bar = fig.add_axes([1 - 0.95 / width, 0.15, 0.12 / width, 0.7])
        fig.colorbar(contours, cax=bar, label="P(class 1) or class")
    fig.suptitle("decision boundaries across the sweep (circles: train, triangles: test)")
    return save_figure(fig, path, 90)
