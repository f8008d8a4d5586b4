"""Runs or sweeps side by side: the config keys that differ, the scores, their learning curves in
one figure, sweeps' summaries joined on their parameters, and where the results came from.

``nnexp.compare(A, B, ...)`` returns a ``Comparison`` (tables as DataFrames, ``figure()``);
``nnexp-compare A B ...`` prints it and writes the figure.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from nnexp.views import Run, Sweep, load
from nnexp.errors import NnexpError
from nnexp.provenance import read_provenance
from nnexp.results import HISTORY_FILE
from nnexp.store import VOLATILE_KEYS

# summary.csv's columns shown for each sweep, by their short names.
SUMMARY_COLUMNS = {"mean_val_score": "val", "std_val_score": "val std", "mean_test_score": "test",
                   "mean_fit_time": "fit s", "status": "status"}


def compare(*results) -> "Comparison":
    """Two or more runs or sweeps side by side: their dirs (the CLI's or the API's), or the
    ``Run`` and ``Sweep`` objects that ``nnexp.run``, ``nnexp.sweep`` and ``nnexp.load`` return."""
    if len(results) < 2:
        raise NnexpError("compare takes two or more run or sweep dirs, e.g. nnexp-compare outputs/A outputs/B")
    if len(results) > len(string.ascii_uppercase):
        raise NnexpError(f"compare takes at most {len(string.ascii_uppercase)} dirs; {len(results)} were given")
    for result in results:
        if not isinstance(result, (Run, Sweep, str, Path)):
            raise NnexpError(f"compare takes run or sweep dirs, or the Run and Sweep objects of nnexp.run, nnexp.sweep "
                             f"and nnexp.load; got {result!r}")
    return Comparison([result if isinstance(result, (Run, Sweep)) else load(result) for result in results])


@dataclass
class Comparison:
    """Results labelled A, B, C ... in the order given; a sweep is represented by its best run
    where one run is needed (config, scores, curves)."""

    items: list[Run | Sweep]

    @cached_property
    def labels(self) -> dict[str, Run | Sweep]:
        return dict(zip(string.ascii_uppercase, self.items))

    @cached_property
    def runs(self) -> dict[str, Run | None]:
        """Each item's run: itself, or a sweep's best (None for a sweep with no finished job)."""
        return {label: item if isinstance(item, Run) else _best_or_none(item) for label, item in self.labels.items()}

    @cached_property
    def config_differences(self):
        """The config keys whose values differ (one row per dotted key, one column per label)."""
        import pandas as pd

        flat = {label: _settings(item, self.runs[label]) for label, item in self.labels.items()}
        keys = sorted({key for settings in flat.values() for key in settings})
        rows = {key: [flat[label].get(key, "-") for label in flat] for key in keys}
        differing = {key: values for key, values in rows.items() if len({_grid_value(v) for v in values}) > 1}  # 1 is 1.0
        return pd.DataFrame.from_dict(differing, orient="index", columns=list(flat))

    @cached_property
    def scores(self):
        """Every split's loss and score of each run (a sweep's best), with status, epochs and fit time."""
        import pandas as pd

        columns = {}
        for label, run in self.runs.items():
            values: dict[str, Any] = {}
            if run is not None:
                values["status"] = run.status
                for split, metrics in run.scores.items():
                    for metric, value in metrics.items():
                        values[f"{split} {metric}"] = value
                fit = run.record.fit
                if fit is not None:
                    values["epochs"] = fit.epochs
                    values["fit seconds"] = round(fit.fit_seconds, 3)
            columns[label] = values
        return pd.DataFrame(columns)

    @cached_property
    def summaries(self):
        """The sweeps' summaries joined on their parameters (an outer join: a grid point one sweep
        lacks shows NaN there); None unless at least two sweeps are compared."""
        import pandas as pd

        sweeps = {label: item for label, item in self.labels.items() if isinstance(item, Sweep)}
        if len(sweeps) < 2:
            return None
        joined = None
        for label, item in sweeps.items():
            summary = item.summary
            params = [column for column in summary.columns if column.startswith("param_")]
            part = summary[params + [column for column in SUMMARY_COLUMNS if column in summary.columns]]
            part = part.rename(columns={column: f"{SUMMARY_COLUMNS[column]} {label}" for column in part.columns if column not in params})
            part = part.rename(columns={column: column[len("param_"):] for column in params})
            keys = [column[len("param_"):] for column in params]
            for key in keys:  # one sweep's 1 is another's 1.0 (pandas reads each file's column on its own)
                part[key] = part[key].map(_grid_value)
            if joined is None:
                joined, joined_keys = part, keys
            else:
                on = [key for key in keys if key in joined_keys]
                # no parameter in common: each sweep's rows on their own, never paired by position
                joined = joined.merge(part, on=on, how="outer") if on else pd.concat([joined, part], ignore_index=True)
                joined_keys = list(dict.fromkeys(joined_keys + keys))
        return joined

    @cached_property
    def provenance(self):
        """Where each result came from (versions, host, device, git commit, data, stored or
        trained), the fields that differ only; empty when all agree."""
        import pandas as pd

        columns = {label: _origin(item, self.runs[label]) for label, item in self.labels.items()}
        frame = pd.DataFrame(columns)
        differing = [key for key in frame.index if len({str(v) for v in frame.loc[key]}) > 1]
        return frame.loc[differing]

    def tables(self) -> list[tuple[str, Any, str]]:
        """(title, DataFrame, what an empty table means), in the order a reader asks: what
        differs, how it scored, how the sweeps' grids compare, where the results came from."""
        sweeps = any(isinstance(item, Sweep) for item in self.items)
        return [("config keys that differ", self.config_differences, "(the configs are the same)"),
                ("scores" + (" (a sweep's best run)" if sweeps else ""), self.scores, "(no finished run)"),
                *([("sweep summaries joined on their parameters", self.summaries, "(no grid points)")] if self.summaries is not None else []),
                ("where the results came from (what differs)", self.provenance, "(the same versions, host, device, commit and data)")]

    def _repr_html_(self) -> str:
        """Jupyter shows a comparison as its tables (``figure()`` draws the curves)."""
        import html

        parts = [f"<p><b>{label}</b> = {'sweep' if isinstance(item, Sweep) else 'run'} <code>{html.escape(str(item.dir))}</code></p>"
                 for label, item in self.labels.items()]
        for title, frame, empty in self.tables():
            parts.append(f"<h4>{html.escape(title)}</h4>")
            parts.append(f"<p><i>{html.escape(empty)}</i></p>" if frame.empty else frame.to_html(na_rep="-"))
        return "\n".join(parts)

    def figure(self):
        """One figure: every run's learning curves (loss, score) overlaid, train solid, validation dashed."""
        from nnexp.plots import new_figure

        figure = new_figure(figsize=(11, 4.2))
        loss_axes, score_axes = figure.subplots(1, 2)
        figure.subplots_adjust(left=0.07, right=0.98, bottom=0.14, top=0.88, wspace=0.25)
        colours = [f"C{index}" for index in range(10)]
        for index, (label, run) in enumerate(self.runs.items()):
            if run is None or not (run.dir / HISTORY_FILE).is_file():
                continue
            history = run.history
            if "fold" in history.columns:
                history = history[history["fold"] == history["fold"].min()]
            steps = history["epoch"] if "epoch" in history.columns else range(len(history))
            for axes, metric in ((loss_axes, "loss"), (score_axes, "score")):
                for split, style in (("train", "-"), ("val", "--")):
                    column = f"{split}_{metric}"
                    if column in history.columns and history[column].notna().any():
                        axes.plot(steps, history[column], style, color=colours[index % 10], label=f"{label} {split}")
        score_name = next((run.record.score_name for run in self.runs.values() if run is not None and run.record.score_name), "score")
        for axes, name in ((loss_axes, "loss"), (score_axes, score_name)):
            axes.set_xlabel("epoch (L-BFGS: iteration)")
            axes.set_ylabel(name)
            axes.grid(alpha=0.3)
            if axes.get_legend_handles_labels()[0]:
                axes.legend(fontsize=8)
        figure.suptitle("learning curves: " + ", ".join(f"{label} = {_short(item.dir)}" for label, item in self.labels.items()), fontsize=9)
        return figure


def _best_or_none(sweep: Sweep) -> Run | None:
    try:
        return sweep.best
    except NnexpError:
        return None


def _short(path: Path, parts: int = 3) -> str:
    return "/".join(Path(path).parts[-parts:])


def _settings(item: Run | Sweep, run: Run | None) -> dict[str, Any]:
    """What a result computed from, as dotted keys: a run's config; for a sweep, its best run's
    config (the run its scores and curves show; the sweep's recorded config when no job
    finished) and its command line's overrides (``sweep``)."""
    from omegaconf import OmegaConf

    overrides = None
    if isinstance(item, Sweep):
        from nnexp.sweeps.grid import SWEEP_RECORD

        recorded = OmegaConf.load(item.dir / SWEEP_RECORD)
        overrides = " ".join(recorded.hydra.overrides.task)
    if run is not None:
        config = OmegaConf.to_container(run.config, resolve=False)
    else:
        config = OmegaConf.to_container(recorded, resolve=False)
    settings = _flatten({key: value for key, value in config.items() if key not in VOLATILE_KEYS})
    if overrides is not None:
        settings["sweep"] = overrides
    return settings


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value) if isinstance(value, (list, dict)) else value
    return flat


def _origin(item: Run | Sweep, run: Run | None) -> dict[str, Any]:
    """Provenance of a result: its provenance.json (a run's own, else its sweep's), its data's
    fingerprint, and whether this dir trained it or restored it from the store."""
    from nnexp.store import REUSED_FILE

    origin = {}
    recorded = read_provenance(run.dir) if run is not None else None
    if recorded is None:
        recorded = read_provenance(item.dir)
    for key, value in _flatten(recorded or {}).items():
        origin[key] = value
    if run is not None:
        origin["data fingerprint"] = run.record.data_fingerprint or "-"
        origin["result"] = "restored from the store" if (run.dir / REUSED_FILE).is_file() else "trained here"
    return origin


def print_comparison(comparison: Comparison, console) -> None:
    """The comparison as rich tables, in the order a reader asks: what differs, how it scored,
    how the sweeps' grids compare, and where the results came from."""
    from rich.table import Table

    for label, item in comparison.labels.items():
        kind = "sweep" if isinstance(item, Sweep) else "run"
        console.print(f"[bold]{label}[/] = {kind} {item.dir}")
    for title, frame, empty in comparison.tables():
        if frame.empty:
            console.print(f"[bold]{title}[/]: [dim]{empty}")
            continue
        console.print(f"[bold]{title}")  # a line of its own: a narrow table would wrap its title
        table = Table()
        index_name = "" if frame.index.dtype != object or title.startswith("sweep") else "key"
        by_rows = not title.startswith("sweep")
        if by_rows:
            table.add_column(index_name, overflow="fold")
        for column in frame.columns:
            table.add_column(str(column), overflow="fold", justify="right" if frame[column].dtype.kind in "fi" else "left")
        for key, row in frame.iterrows():
            table.add_row(*([str(key)] if by_rows else []), *[_cell(value) for value in row])
        console.print(table)


def _grid_value(value) -> str:
    """A swept value as one string whichever type pandas read it as: 1, 1.0 and "1" are "1"."""
    if type(value).__name__ in ("bool", "bool_"):
        return str(bool(value))
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):  # 4 decimals for scores; small and large values (alpha=1e-5, eps) as 4 digits
        return f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e4 else f"{value:.4g}"
    return str(value)


def main() -> None:
    """nnexp-compare A B [C ...]: runs or sweeps side by side, and their learning curves in one figure."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="nnexp-compare", description=main.__doc__)
    parser.add_argument("dirs", nargs="+", type=Path, help="run dirs (with metrics.json) or sweep dirs (with multirun.yaml)")
    parser.add_argument("--figure", type=Path, default=Path("compare.png"), help="where the overlaid learning curves go")
    args = parser.parse_args()
    from nnexp.console import make_console

    try:
        comparison = compare(*args.dirs)
        console = make_console()
        print_comparison(comparison, console)
        from nnexp.plots import save_figure

        console.print(f"[dim]plot: {save_figure(comparison.figure(), args.figure)}")
    except NnexpError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
