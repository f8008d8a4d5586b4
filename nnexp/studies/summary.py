"""One summary of a whole Optuna study, read from its storage: every trial from every worker,
with its parameters, value, state, epochs and the command that reproduces it; Optuna's own
figures; and the best trial, as Optuna's ``study.best_trial`` names it."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from nnexp.results import write_text_atomic

STUDY_SUMMARY_FILE = "study.csv"
FIGURES = ("plot_optimization_history", "plot_param_importances", "plot_parallel_coordinate")
# Optuna 4 ranks parameters by fANOVA by default, Optuna 5 by PED-ANOVA: named here, so the report
# says which, and is the same under both.
IMPORTANCE_METHOD = "PED-ANOVA"


def importance_evaluator():
    """The parameter-importance method of the study report (Optuna's ``PedAnovaImportanceEvaluator``)."""
    import warnings

    from optuna.exceptions import ExperimentalWarning
    from optuna.importance import PedAnovaImportanceEvaluator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)  # experimental in Optuna 4, the default in 5
        return PedAnovaImportanceEvaluator()


def trial_rows(study) -> list[dict]:
    """One row per trial, in trial-number order."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        info = trial.user_attrs.get("nnexp", {})
        overrides = list(info.get("fixed", [])) + [f"{key}={value}" for key, value in trial.params.items()]
        rows.append({
            "number": trial.number,
            "state": trial.state.name,
            "value": trial.value if trial.value is not None else (
                trial.intermediate_values[trial.last_step] if trial.last_step is not None else float("nan")),
            **{f"param_{key}": value for key, value in trial.params.items()},
            "epochs": trial.user_attrs.get("epochs", trial.last_step),
            "worker": "{host}:{pid}".format(**info["worker"]) if "worker" in info else "",
            "job_dir": info.get("job_dir", ""),
            "error": trial.user_attrs.get("error", ""),
            "command": "nnexp " + " ".join(overrides),
        })
    return rows


def write_rows(rows: list[dict], path: Path) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


def best_trial(study):
    """Optuna's ``study.best_trial``, or None while no trial has completed."""
    try:
        return study.best_trial
    except ValueError:
        return None


def ended_trials(study) -> tuple[int, tuple[float, int] | None]:
    """How many of the study's trials have ended (completed or pruned), and the highest completed
    value with its trial's number (as summary.csv ranks), None while none has completed."""
    from optuna.trial import TrialState

    ended = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    values = [(trial.value, trial.number) for trial in ended if trial.state == TrialState.COMPLETE and trial.value is not None]
    return len(ended), max(values) if values else None


def study_table(rows: list[dict], title: str, best_number: int | None, limit: int = 25):
    """A rich table of the trials, best first for finished trials (``limit`` rows)."""
    from rich.table import Table

    params = [key for key in dict.fromkeys(k for row in rows for k in row) if key.startswith("param_")]
    table = Table(title=title)
    for column in ("trial", "state", "value", "epochs", *[p[len("param_"):] for p in params]):
        table.add_column(column, justify="right" if column in ("trial", "value", "epochs") else "left")
    complete = sorted((r for r in rows if r["state"] == "COMPLETE"), key=lambda r: r["value"],
                      reverse=True)
    others = [r for r in rows if r["state"] != "COMPLETE"]
    for row in (complete + others)[:limit]:
        value = row["value"]
        style = "bold green" if row["number"] == best_number else None
        table.add_row(str(row["number"]), row["state"], "-" if value is None or math.isnan(value) else f"{value:.4f}",
                      "-" if row["epochs"] is None else f"{row['epochs']:g}", *[str(row.get(p, "")) for p in params],
                      style=style)
    return table


def draw_study_figures(study, out_dir: Path) -> list[Path]:
    """Optuna's matplotlib figures of the study (those it can draw with the trials it has)."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as optuna_plots

    drawn = []
    for name in FIGURES:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib figures experimental
                if name == "plot_param_importances":
                    axes = optuna_plots.plot_param_importances(study, evaluator=importance_evaluator())
                    axes.set_title(f"Hyperparameter importances ({IMPORTANCE_METHOD})")
                else:
                    axes = getattr(optuna_plots, name)(study)
        except (ValueError, RuntimeError, ZeroDivisionError):  # too few finished trials for this figure
            continue
        figure = (axes.flat[0] if hasattr(axes, "flat") else axes).get_figure()
        path = Path(out_dir) / f"study_{name.removeprefix('plot_')}.png"
        figure.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(figure)
        drawn.append(path)
    return drawn


def summarise_study(study, out_dir: Path, console=None, figures: bool = True) -> list[dict]:
    """Write study.csv (and Optuna's figures) to ``out_dir``, print the table and the best command."""
    from nnexp.console import make_console

    console = console or make_console()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = trial_rows(study)
    write_rows(rows, out_dir / STUDY_SUMMARY_FILE)
    best = best_trial(study)
    states = {}
    for row in rows:
        states[row["state"]] = states.get(row["state"], 0) + 1
    counts = ", ".join(f"{n} {state.lower()}" for state, n in sorted(states.items()))
    console.print(study_table(rows, f"study {study.study_name}: {len(rows)} trials from every worker ({counts})",
                              best.number if best else None))
    if best is None:
        console.print("[red]no trial of the study has completed yet")
        return rows
    best_row = next(row for row in rows if row["number"] == best.number)
    console.print(f"best (trial {best.number}, value {best.value:.4f}): [bold]{best_row['command']}")
    if figures and len(rows) > 1:
        for path in draw_study_figures(study, out_dir):
            method = f" (parameter importance by {IMPORTANCE_METHOD})" if "param_importances" in path.name else ""
            console.print(f"[dim]plot: {path}{method}")
    console.print(f"[dim]study summary: {out_dir / STUDY_SUMMARY_FILE}")
    return rows
