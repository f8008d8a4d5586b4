"""The sweep summary: one row per grid point, like GridSearchCV.cv_results_."""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from nnexp.metrics import FAILED, FitMetrics, RunRecord, read_record
from nnexp.results import HISTORY_FILE, METRICS_FILE, MODEL_FILE, write_text_atomic
from nnexp.store import REUSED_FILE, chooses_data
from nnexp.sweeps.grid import recorded_grid

SUMMARY_FILE = "summary.csv"
GROUPED_KEYS = ("seed",)  # grid points that differ only in these are averaged
LAUNCH_KEYS = ("launcher", "hydra.", "resume", "trial")  # how a sweep ran, not what a run computes


DIVERGED_ERROR = "the training loss became NaN, infinite or far above the trivial predictor's: lower optim.lr"


@dataclass
class Job:
    """One job dir of a sweep: its overrides and, once it ended, its record."""

    path: Path
    overrides: list[str]
    record: RunRecord | None
    missing: bool = False  # a grid point's job that has no job dir (the sweep was stopped before it)

    @property
    def fit(self) -> FitMetrics | None:
        """The fit's metrics of a job that trained to the end."""
        return self.record.fit if self.record else None

    @property
    def params(self) -> dict[str, str]:
        """The job's settings by key (not its Optuna trial link, which every job has its own of)."""
        return dict(item.lstrip("+~").split("=", 1) for item in self.overrides if "=" in item and not item.startswith("trial="))

    @property
    def status(self) -> str:
        if self.missing:
            return "missing"
        return self.record.status if self.record else "unfinished"

    @property
    def reused(self) -> bool:
        """Whether this launch restored the job's result from the store instead of training it."""
        return (self.path / REUSED_FILE).is_file()

    @property
    def objective(self) -> float:
        return self.record.objective_value if self.record else float("nan")


def read_jobs(sweep_dir: Path) -> list[Job]:
    """Every job dir under ``sweep_dir`` (finished or not), in job-number order."""
    jobs = []
    for overrides_file in Path(sweep_dir).glob("*/.hydra/overrides.yaml"):
        job_dir = overrides_file.parent.parent
        metrics_file = job_dir / METRICS_FILE
        try:
            record = read_record(metrics_file) if metrics_file.is_file() else None
        except ValueError:
            record = None
        jobs.append(Job(job_dir, list(yaml.safe_load(overrides_file.read_text()) or []), record))
    seen = {frozenset(job.overrides) for job in jobs}
    for number, overrides in enumerate(recorded_grid(sweep_dir) or []):
        if frozenset(overrides) not in seen:
            jobs.append(Job(Path(sweep_dir) / str(number), overrides, None, missing=True))
    return sorted(jobs, key=lambda job: (not job.path.name.isdigit(), int(job.path.name) if job.path.name.isdigit() else job.path.name))


def swept_keys(jobs: list[Job]) -> list[str]:
    """Override keys whose values differ between jobs, in the order they first appear."""
    keys: list[str] = []
    for job in jobs:
        keys.extend(key for key in job.params if key not in keys)
    return [key for key in keys if len({job.params.get(key) for job in jobs}) > 1]


def _finite(values) -> list:
    return [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]


def _std(values) -> float:
    values = _finite(values)
    return float(np.std(values)) if values else float("nan")


def scored_on(jobs: list[Job]) -> str:
    """``val`` when every job's objective is a validation (or CV) score, ``train`` when none has one."""
    kinds = {"val" if job.fit and job.fit.val_score is not None else "train" for job in jobs}
    return kinds.pop() if len(kinds) == 1 else "mixed"


def _mean(values) -> float:
    values = _finite(values)
    return float(np.mean(values)) if values else float("nan")


def summarise_jobs(jobs: list[Job]) -> tuple[list[dict], list[str]]:
    """Group jobs into grid points and rank them; returns the rows (best first) and the param keys."""
    keys = [key for key in swept_keys(jobs) if key not in GROUPED_KEYS]
    groups: dict[tuple, list[Job]] = defaultdict(list)
    for job in jobs:
        groups[tuple(job.params.get(key) for key in keys)].append(job)
    rows = []
    for grid_index, (values, members) in enumerate(groups.items()):
        ok = [job for job in members if job.status == "ok"]
        scores = [job.objective for job in ok]
        if len(members) > 1:
            mean, std = _mean(scores), float(np.std(scores)) if scores else float("nan")
        else:  # one job: the spread is over its cross-validation folds
            mean = _mean(scores)
            fold_std = ok[0].fit.val_score_std if ok else None
            std = float("nan") if fold_std is None else fold_std  # one fit, no folds: no spread to show
        if len(ok) < len(members):
            mean = float("nan")  # a grid point with a failed or diverged run is not a candidate
        statuses = defaultdict(int)
        for job in members:
            statuses[job.status] += 1
        best_job = max(ok, key=lambda job: job.objective) if ok else members[0]
        rows.append(
            {
                **{f"param_{key}": value for key, value in zip(keys, values)},
                "mean_val_score": mean,
                "std_val_score": std,
                "mean_train_score": _mean([job.fit.train_score for job in ok]),
                "mean_test_score": _mean(test_scores := [job.fit.test_score for job in ok]),
                # Over seeds: the lecture's "effect of random state" on the test score.
                "std_test_score": _std(test_scores),
                # What the objective scored: validation rows (a split or CV folds), or training rows.
                "scored_on": scored_on(ok),
                "mean_fit_time": _mean([job.fit.mean_fit_seconds or job.fit.fit_seconds for job in ok]),
                "n_runs": len(members),
                "n_reused": sum(job.reused for job in members),
                "status": "ok" if len(ok) == len(members) else ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())),
                "error": next((job.record.error for job in members if job.record and job.record.error), "")
                or (DIVERGED_ERROR if any(job.status == "diverged" for job in members) else ""),
                "data_fingerprint": " ".join(sorted({job.record.data_fingerprint or "" for job in ok})),
                "best_job": best_job.path.name,
                "command": "nnexp " + " ".join(o for o in best_job.overrides if not o.lstrip("+~").startswith(LAUNCH_KEYS)),
                "grid_index": grid_index,  # the point's place in the sweep's own order (rows are ranked)
            }
        )
    # Rank like scikit-learn: 1 is best, ties share the lowest rank, NaN scores come last.
    order = sorted(rows, key=lambda row: (math.isnan(row["mean_val_score"]), -np.nan_to_num(row["mean_val_score"], nan=0.0)))
    for row in order:
        score = row["mean_val_score"]
        better = sum(1 for other in order if not math.isnan(other["mean_val_score"]) and (math.isnan(score) or other["mean_val_score"] > score))
        row["rank_val_score"] = better + 1
    return order, keys


def write_summary_csv(rows: list[dict], path: Path) -> None:
    """summary.csv, written atomically, best grid point first."""
    columns = list(rows[0]) if rows else []
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())


def summary_table(rows: list[dict], keys: list[str], title: str):
    """The summary as a rich table, best first."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    # Cells fold instead of being cut to "…" when the terminal is narrow.
    table.add_column("rank", justify="right", overflow="fold")
    for key in keys:
        table.add_column(key, overflow="fold")
    # The objective's column says what it scored; without a validation split it is the training
    # score, and a separate training-score column would only repeat it.
    scored = {row.get("scored_on", "val") for row in rows}
    header = {frozenset({"val"}): "val score", frozenset({"train"}): "train score"}.get(frozenset(scored), "score")
    table.add_column(header, justify="right", overflow="fold")
    show_train = scored != {"train"}
    if show_train:
        table.add_column("train score", justify="right", overflow="fold")
    table.add_column("test score", justify="right", overflow="fold")
    table.add_column("fit s", justify="right", overflow="fold")
    table.add_column("runs", justify="right", overflow="fold")
    table.add_column("status", overflow="fold")
    for row in rows:
        score = "-" if math.isnan(row["mean_val_score"]) else f"{row['mean_val_score']:.4f}" + (
            "" if math.isnan(row["std_val_score"]) else f" ± {row['std_val_score']:.4f}")
        if len(scored) > 1 and row.get("scored_on") == "train" and score != "-":
            score += " (train)"  # some grid points had no validation split: theirs is the training score
        test = "-" if math.isnan(row["mean_test_score"]) else (
            f"{row['mean_test_score']:.4f}" + (f" ± {row['std_test_score']:.4f}" if row["n_runs"] > 1 else ""))
        train = ["-" if math.isnan(row["mean_train_score"]) else f"{row['mean_train_score']:.4f}"] if show_train else []
        status = row["status"] if not row["error"] else f"{row['status']}: {row['error'][:60]}"
        if row.get("n_reused"):  # restored from the store: its fit time is from the run that trained it
            status += f" (stored: {row['n_reused']} of {row['n_runs']})" if row["n_runs"] > 1 else " (stored)"
        table.add_row(
            str(row["rank_val_score"]), *[str(row[f"param_{key}"]) for key in keys], score, *train, test,
            "-" if math.isnan(row["mean_fit_time"]) else f"{row['mean_fit_time']:.2f}",
            str(row["n_runs"]), status,
        )
    return table


def data_note(jobs: list[Job]) -> str:
    """The data's fingerprints, or a note when jobs of the same data (the same data overrides: a
    sweep over ``data.path`` chooses several) trained on different versions of it."""
    by_data = defaultdict(set)
    for job in jobs:
        if job.record and job.record.data_fingerprint:
            chosen = tuple(o for o in job.overrides if chooses_data(o))
            by_data[chosen].add(job.record.data_fingerprint)
    fingerprints = sorted(set().union(*by_data.values()))
    changed = sorted(set().union(*(found for found in by_data.values() if len(found) > 1)))
    if changed:
        return (f"[yellow]note[/]: jobs of the same data trained on {len(changed)} versions of it "
                f"(fingerprints {', '.join(changed)}): a data file changed during the sweep")
    return f"[dim]data fingerprint{'s' if len(fingerprints) > 1 else ''}: {', '.join(fingerprints)}" if fingerprints else ""


def summarise(sweep_dir: Path, refit: bool = False, plots: bool = True, console=None, figures: str = "foreground",
              batched: bool = False, refit_incomplete: bool = False, refit_runner=None) -> list[dict]:
    """Write summary.csv (and plots) for a sweep dir, print the table and the best command, and
    optionally refit the best config on the whole training split and report its test score.

    ``figures="background"`` leaves the figures and report.html to a detached process, so the
    command returns once the table is printed (matplotlib's import and drawing take ~0.3 s).
    ``batched``: train the refit with the batched trainer, as the sweep's jobs were (the default
    when the best job's metrics say it was batched). A sweep with jobs not finished (or never
    started) is refitted only with ``refit_incomplete``: its best point may not be the grid's.
    ``refit_runner(job_dir, output_dir, batched)``: where the refit runs (a cluster task), instead
    of ``refit_best`` here."""
    from nnexp.console import make_console

    console = console or make_console()
    sweep_dir = Path(sweep_dir)
    jobs = read_jobs(sweep_dir)
    if not jobs:
        console.print(f"[yellow]no job dirs found in {sweep_dir}")
        return []
    rows, keys = summarise_jobs(jobs)
    write_summary_csv(rows, sweep_dir / SUMMARY_FILE)
    unfinished = sum(job.status in ("unfinished", "missing") for job in jobs)
    title = f"sweep {sweep_dir} ({len(jobs)} {'job' if len(jobs) == 1 else 'jobs'}" + (f", {unfinished} unfinished)" if unfinished else ")")
    console.print(summary_table(rows, keys, title))
    if note := data_note(jobs):
        console.print(note)
    reused = sum(job.reused for job in jobs)
    if reused:
        console.print(f"[yellow]note[/]: {reused} of {len(jobs)} jobs reused results stored by an earlier sweep "
                      "(marked 'stored'; their fit times are from that run); fresh=true retrains them")
    if any(job.fit.cv is None and job.fit.val_score is None for job in jobs if job.status == "ok"):
        console.print("[yellow]note[/]: jobs had no validation split, so they are ranked by training score; "
                      "sweep with cv=5, or hold out data.validation_fraction=0.1")
    best = rows[0]
    if math.isnan(best["mean_val_score"]):
        if unfinished and not any(job.status in FAILED for job in jobs):  # stopped, not failed (Ctrl-C, a killed task)
            console.print(f"[yellow]no grid point has all its jobs finished yet ({unfinished} unfinished): "
                          f"nnexp resume={sweep_dir} runs the rest", soft_wrap=True)
        else:
            console.print("[red]no grid point finished without errors")
        return rows
    console.print(f"best (rank 1): [bold]{best['command']}", soft_wrap=True)  # a command to copy: never broken
    drawn = []
    if plots and figures != "background":
        drawn = draw_sweep_figures(jobs, rows, keys, sweep_dir)
        for path in drawn:
            console.print(f"[dim]plot: {path}")
    if refit and unfinished and not refit_incomplete:
        console.print(f"[yellow]refit skipped[/]: {unfinished} of {len(jobs)} jobs have not finished, so the best point "
                      f"may not be the grid's; finish them (nnexp resume={sweep_dir}) or refit anyway: "
                      f"nnexp-summary {sweep_dir} --refit --refit-incomplete")
    elif refit:
        from nnexp.sweeps.refit import refit_best

        best_fit = next((job.fit for job in jobs if job.path.name == best["best_job"]), None)
        batched = batched or bool(best_fit and best_fit.batched)  # nnexp-summary --refit of a batched sweep
        refit_run = (refit_runner or refit_best)(sweep_dir / best["best_job"], sweep_dir / "refit", batched)
        fit = refit_run.fit
        console.print(
            f"refit on the whole training split: test {refit_run.score_name} [bold]{fit.test_score:.4f}[/] "
            f"(train {fit.train_score:.4f}, {fit.fit_seconds:.2f} s) -> {sweep_dir / 'refit'}"
        )
        from nnexp.plots.report import refit_command

        console.print(f"the refit model again: [bold]{refit_command(best['command'])}")
    if plots and figures == "background":
        from nnexp.plots.background import start_drawing

        start_drawing(sweep_dir, "nnexp.sweeps.summary", "figures.log")
        console.print(f"[dim]summary: {sweep_dir / SUMMARY_FILE}; figures and report.html: drawing in the background "
                      f"(nnexp-plot {sweep_dir} waits for them)", soft_wrap=True)
        return rows
    from nnexp.plots.report import write_report

    console.print(f"[dim]summary: {sweep_dir / SUMMARY_FILE}, report: {write_report(sweep_dir, rows, keys, drawn)}", soft_wrap=True)
    return rows


def draw_figures_and_report(sweep_dir: Path) -> Path:
    """The sweep's figures, then report.html (written last, so its presence means all is drawn)."""
    from nnexp.plots.report import write_report

    jobs = read_jobs(sweep_dir)
    rows, keys = summarise_jobs(jobs)
    return write_report(sweep_dir, rows, keys, draw_sweep_figures(jobs, rows, keys, sweep_dir))


def draw_sweep_figures(jobs: list[Job], rows: list[dict], keys: list[str], sweep_dir: Path) -> list[Path]:
    """Score against the swept parameters and, for 2-D classification data, every job's boundary."""
    from nnexp.plots.sweep import plot_sweep

    figures = plot_sweep(rows, keys, sweep_dir)
    curves = draw_learning_curves(jobs, keys, sweep_dir)
    if curves is not None:
        figures.append(curves)
    finished = [job for job in jobs if job.status == "ok" and (job.path / MODEL_FILE).is_file()]
    if finished:
        from nnexp.artifacts import Run

        saved = Run(finished[0].path).saved
        if tuple(saved["input_shape"]) == (2,) and saved["task"] != "regression":
            from nnexp.plots.panels import boundary_panel

            figures.append(boundary_panel(jobs, swept_keys(jobs), sweep_dir / "boundaries.png"))
    return figures + draw_study_figures(sweep_dir)


def draw_study_figures(sweep_dir: Path) -> list[Path]:
    """Optuna's own figures of the study an Optuna sweep fed (its study.json names it), drawn
    from the storage: every worker's trials, not only this sweep dir's."""
    from nnexp.results import STUDY_FILE, read_json

    if not (Path(sweep_dir) / STUDY_FILE).is_file():
        return []
    from nnexp.studies.storage import open_study
    from nnexp.studies.summary import draw_study_figures as draw

    reference = read_json(Path(sweep_dir) / STUDY_FILE)
    return draw(open_study(reference["study"], reference["storage"]), Path(sweep_dir))


def legend_label(keys: list[str], values: tuple) -> str:
    """A grid point's legend entry: its keys' last parts, numbers to 3 significant digits (an
    Optuna trial's 0.016352949355839833 reads 0.0164), a line a key when there are several."""
    from nnexp.plots.labels import short_value

    parts = [f"{key.split('.')[-1]}={short_value(value)}" for key, value in zip(keys, values)]
    return ("\n" if len(", ".join(parts)) > 24 else ", ").join(parts) or "all runs"


def draw_learning_curves(jobs: list[Job], keys: list[str], sweep_dir: Path) -> Path | None:
    """``learning_curves.png``: every grid point's learning curves, averaged over seeds and folds."""
    from nnexp.artifacts import Run
    from nnexp.plots.sweep import plot_learning_curves

    groups: dict[tuple, list[list[dict]]] = defaultdict(list)
    steps = set()  # what a history row is: an epoch, or an L-BFGS iteration
    for job in jobs:
        if job.status != "ok" or not (job.path / HISTORY_FILE).is_file():
            continue
        history = Run(job.path).history
        steps.add("iteration" if job.fit.iterations is not None else "epoch")
        folds = sorted({row.get("fold", 0) for row in history})  # a CV job's history holds every fold
        groups[tuple(job.params.get(key) for key in keys)] += [[row for row in history if row.get("fold", 0) == fold] for fold in folds]
    if not groups:
        return None
    labelled = [(legend_label(keys, values), histories) for values, histories in groups.items()]
    step_name = steps.pop() if len(steps) == 1 else "epoch (L-BFGS: iteration)"
    return plot_learning_curves(labelled, Path(sweep_dir) / "learning_curves.png", step_name)


if __name__ == "__main__":  # python -m nnexp.sweeps.summary SWEEP_DIR: the background drawing
    import sys

    from nnexp.plots.background import finish_drawing

    try:
        draw_figures_and_report(Path(sys.argv[1]))
    finally:
        finish_drawing(Path(sys.argv[1]))
