"""Sweeps launched in-process (Hydra multirun through nnexp's own entry point, no shell per job)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra.core.global_hydra import GlobalHydra

from nnexp import cli, compat

pytestmark = pytest.mark.hydra  # also run on the oldest releases in CI

FAST = ["quiet=true", "logger=none", "hydra.callbacks.sweep_summary.figures=foreground"]


@pytest.fixture
def launch(tmp_path, monkeypatch, capsys):
    """launch(*overrides) runs `nnexp -m ...` in this process and returns the sweep dir."""
    monkeypatch.chdir(tmp_path)

    def _launch(*overrides: str, sweep_dir: str = "sweep") -> Path:
        GlobalHydra.instance().clear()
        monkeypatch.setattr(sys, "argv", ["nnexp", "-m", f"hydra.sweep.dir={sweep_dir}", *FAST, *overrides])
        cli.main()
        return tmp_path / sweep_dir

    return _launch


def summary_rows(sweep_dir: Path) -> list[dict]:
    return list(csv.DictReader((sweep_dir / "summary.csv").open()))


def job_metrics(sweep_dir: Path) -> dict[str, dict]:
    return {path.parent.name: json.loads(path.read_text()) for path in sweep_dir.glob("*/metrics.json")}


def test_grid_has_one_row_per_point_and_ranks_the_known_answer(launch):
    # Circles need hidden units and little regularisation: [50] with alpha 1e-4 must win, and
    # the huge penalty must lose whatever the width.
    sweep = launch(
        "data=circles", "optim=lbfgs", "cv=3", "trainer.max_epochs=20",
        "model.hidden_sizes=[1],[50]", "regularization.alpha=1e-4,1e4",
    )
    rows = summary_rows(sweep)
    assert len(rows) == 4
    best = rows[0]
    assert (best["param_model.hidden_sizes"], best["param_regularization.alpha"], best["rank_val_score"]) == ("[50]", "0.0001", "1")
    assert float(best["mean_val_score"]) > 0.9
    worst_two = {row["param_regularization.alpha"] for row in rows[2:]}
    assert worst_two == {"10000.0"}
    assert {"mean_val_score", "std_val_score", "rank_val_score", "mean_fit_time", "status"} <= set(best)
    assert (sweep / "sweep_heatmap.png").stat().st_size > 5000


def test_cv_scores_match_scikit_learn_on_the_same_folds(launch):
    """Logistic regression is convex, so nnexp's L-BFGS fit and scikit-learn's reach the same
    optimum; alpha=1 with nnexp's scaling equals C=1. Per-fold accuracies must agree."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    sweep = launch(
        "model=logistic", "optim=lbfgs", "optim.tol=1e-7", "optim.max_iter=1000",
        "regularization.alpha=1", "cv=3", "seed=0,1",
    )
    X, y = load_breast_cancer(return_X_y=True)
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    expected = []
    for fit_rows, held_out in StratifiedKFold(3).split(X_train, y_train):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, tol=1e-8, max_iter=1000))
        model.fit(X_train[fit_rows], y_train[fit_rows])
        expected.append(model.score(X_train[held_out], y_train[held_out]))
    for metrics in job_metrics(sweep).values():
        scores = [fold["val_score"] for fold in metrics["folds"]]
        assert scores == pytest.approx(expected, abs=1.5 / 142)  # at most one sample per fold
        assert metrics["val_score"] == pytest.approx(np.mean(scores))
        assert metrics["cv"] == 3 and len(metrics["folds"]) == 3 and "test_score" not in metrics
    rows = summary_rows(sweep)
    assert len(rows) == 1 and rows[0]["n_runs"] == "2"  # seeds are grouped into one grid point


def test_failures_and_divergence_are_recorded_and_the_sweep_goes_on(launch):
    sweep = launch("data=diabetes", "optim=sgd", "trainer.max_epochs=30", "optim.lr=0.01,1e6", "model.hidden_sizes=[5],[0]")
    metrics = job_metrics(sweep)
    statuses = sorted(m["status"] for m in metrics.values())
    assert statuses == ["diverged", "failed", "failed", "ok"]
    failed = [m for m in metrics.values() if m["status"] == "failed"]
    assert all("model.hidden_sizes" in m["error"] for m in failed)
    rows = summary_rows(sweep)
    assert rows[0]["status"] == "ok" and rows[0]["rank_val_score"] == "1"
    assert {row["status"] for row in rows[1:]} == {"1 diverged", "1 failed"}


def test_results_of_an_older_nnexp_are_not_reused(launch, capsys, monkeypatch):
    """A store entry written when the same config computed something else is retrained."""
    from nnexp import store

    overrides = ("data=iris", "model=logistic", "optim=lbfgs", "regularization.alpha=0.1,1")
    current = store.RESULTS_VERSION
    monkeypatch.setattr(store, "RESULTS_VERSION", current - 1)
    launch(*overrides, sweep_dir="older")
    monkeypatch.setattr(store, "RESULTS_VERSION", current)  # (not undo(): that would also undo launch's chdir)
    capsys.readouterr()
    launch(*overrides, sweep_dir="current")
    assert capsys.readouterr().out.count("skipped, finished earlier") == 0


@pytest.mark.parametrize("launcher", ["basic", "batched"])
def test_reused_results_are_marked_and_fresh_retrains_them(launch, capsys, tmp_path, launcher):
    overrides = (f"launcher={launcher}", "data=iris", "model=logistic", "optim=adam", "trainer.max_epochs=3",
                 "regularization.alpha=0.1,1")
    launch(*overrides, sweep_dir="first")
    capsys.readouterr()
    second = launch(*overrides, sweep_dir="second")
    output = " ".join(capsys.readouterr().out.split())  # rich wraps long lines at the console's width
    assert "2 of 2 jobs reused results stored by an earlier sweep" in output and "(stored)" in output
    assert [row["n_reused"] for row in summary_rows(second)] == ["1", "1"]
    store = tmp_path / "multirun" / ".store"
    stored = {path.parent.name: path.read_text() for path in store.glob("*/metrics.json")}
    assert len(stored) == 2

    third = launch(*overrides, "fresh=true", sweep_dir="third")
    output = capsys.readouterr().out
    assert "skipped, finished earlier" not in output and "reused" not in output
    assert [row["n_reused"] for row in summary_rows(third)] == ["0", "0"]
    restored = {path.parent.name: path.read_text() for path in store.glob("*/metrics.json")}
    assert restored.keys() == stored.keys() and restored != stored  # the new fits replaced the stored ones
    assert {m["job_key"]: json.dumps(m, sort_keys=True) for m in job_metrics(third).values()} == {
        key: json.dumps(json.loads(text), sort_keys=True) for key, text in restored.items()}
    assert not list(store.glob(".*"))  # no staging or moved-aside entries left behind


def test_rerunning_a_sweep_skips_finished_jobs(launch, capsys):
    overrides = ("data=iris", "model=logistic", "optim=lbfgs", "regularization.alpha=0.1,1")
    first = launch(*overrides, sweep_dir="first")
    capsys.readouterr()
    second = launch(*overrides, sweep_dir="second")
    output = capsys.readouterr().out
    assert output.count("skipped, finished earlier") == 2
    assert job_metrics(first) == job_metrics(second)
    assert len(summary_rows(second)) == 2


def test_refit_retrains_the_best_config_on_the_whole_training_split(launch):
    sweep = launch("data=iris", "model=logistic", "optim=lbfgs", "cv=3", "refit=true", "regularization.alpha=0.01,1000")
    refit = json.loads((sweep / "refit" / "metrics.json").read_text())
    best = summary_rows(sweep)[0]
    assert best["param_regularization.alpha"] == "0.01"
    assert refit["status"] == "ok" and "cv" not in refit
    assert refit["n_train"] == 112 and refit["test_score"] > 0.8


def test_summary_of_an_unfinished_sweep(launch, capsys, monkeypatch):
    sweep = launch("data=iris", "model=logistic", "optim=lbfgs", "regularization.alpha=0.1,1,10")
    (sweep / "1" / "metrics.json").unlink()
    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["nnexp-summary", str(sweep), "--no-plots"])
    cli.summary_main()
    assert "1 unfinished" in " ".join(capsys.readouterr().out.split())  # rich wraps the title at the console's width
    statuses = {row["param_regularization.alpha"]: row["status"] for row in summary_rows(sweep)}
    assert statuses["1"] == "1 unfinished"


def test_a_stopped_seed_sweep_says_resume_not_failed(launch, capsys, monkeypatch):
    """One grid point over seeds, one seed's job never finished (Ctrl-C): nothing failed, so the
    summary says how to finish it rather than 'no grid point finished without errors'."""
    sweep = launch("data=iris", "model=logistic", "optim=lbfgs", "seed=0,1")
    (sweep / "1" / "metrics.json").unlink()
    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["nnexp-summary", str(sweep), "--no-plots"])
    cli.summary_main()
    out = " ".join(capsys.readouterr().out.split())
    assert f"no grid point has all its jobs finished yet (1 unfinished): nnexp resume={sweep} runs the rest" in out
    assert "without errors" not in out


def test_sweep_killed_mid_way_resumes_without_losing_or_repeating_jobs(tmp_path, monkeypatch, capsys):
    command = [
        str(Path(sys.executable).with_name("nnexp")), "-m", "hydra.sweep.dir=sweep", *FAST,
        "data=digits", "trainer.max_epochs=40", "stopping=none", "regularization.alpha=1e-4,1e-3,1e-2,1e-1,1,10",
    ]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    sweep = tmp_path / "sweep"
    finished = 0
    while finished < 2:  # each job reports "-> objective" once its files are written
        line = process.stdout.readline()
        assert line, "the sweep ended before two jobs finished"
        finished += "-> objective" in line
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    before = {path.parent.name: path.stat().st_mtime_ns for path in sweep.glob("*/metrics.json")}
    assert 2 <= len(before) < 6
    monkeypatch.chdir(tmp_path)
    GlobalHydra.instance().clear()
    monkeypatch.setattr(sys, "argv", ["nnexp", f"resume={sweep}"])
    cli.main()
    output = capsys.readouterr().out
    after = {path.parent.name: path.stat().st_mtime_ns for path in sweep.glob("*/metrics.json")}
    assert len(after) == 6 and len(summary_rows(sweep)) == 6
    assert all(after[name] == mtime for name, mtime in before.items())  # finished jobs were not rerun
    assert output.count("skipped, finished earlier") == len(before)


def test_a_local_task_launcher_runs_a_tiny_sweep(launch):  # launcher=joblib: the README's command (test_readme)
    sweep = launch("launcher=submitit_local", "data=iris", "model=logistic", "optim=gd", "trainer.max_epochs=3", "seed=11,12")
    metrics = job_metrics(sweep)
    assert len(metrics) == 2 and all(m["status"] == "ok" for m in metrics.values())


def test_in_process_launcher_builds_the_configs_hydra_would(launch):
    import yaml
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    sweep = launch("optim=adam,sgd", "regularization.alpha=0.1,1", "model.hidden_sizes=[5]", "trainer.max_epochs=1", "data=iris")
    job_dirs = sorted(p.parent.parent for p in sweep.glob("*/.hydra/overrides.yaml"))
    assert len(job_dirs) == 4
    GlobalHydra.instance().clear()
    with initialize_config_module("nnexp.configs", **compat.hydra_version_base()):
        for job_dir in job_dirs:
            overrides = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text())
            saved = OmegaConf.load(job_dir / ".hydra" / "config.yaml")
            expected = compose("train", overrides=overrides)
            assert OmegaConf.to_container(saved) == OmegaConf.to_container(expected)
            hydra_cfg = OmegaConf.load(job_dir / ".hydra" / "hydra.yaml").hydra
            assert hydra_cfg.job.override_dirname == ",".join(sorted(overrides))


@pytest.mark.parametrize(
    ("command", "job"),
    [
        (["data=iris", "plots=false", "regularization.alpha=0.1,1"], ["data=iris", "plots=false", "regularization.alpha=1"]),
        (["data=iris", "optim=adam,sgd", "seed=1"], ["data=iris", "optim=sgd", "seed=1"]),
        (["data=iris", "seed=0,1"], ["data=iris", "seed=1", "+model.extra=2"]),
    ],
    ids=["values-only: starts from the sweep config", "swept group", "job adds a key"],
)
def test_job_configs_equal_hydras_own_composition(command, job, tmp_path):
    """Every node, hydra's included, of a job config built through the launcher's cache equals
    what Hydra's load_sweep_config composes for the same job."""
    from hydra import initialize_config_module
    from hydra.core.utils import setup_globals
    from hydra.types import HydraContext, RunMode
    from hydra_plugins.nnexp_launcher import InProcessLauncher
    from omegaconf import OmegaConf

    GlobalHydra.instance().clear()
    setup_globals()
    with initialize_config_module("nnexp.configs", **compat.hydra_version_base()):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("train", [*command, "hydra.mode=MULTIRUN", f"hydra.sweep.dir={tmp_path}"], RunMode.MULTIRUN)
        launcher = InProcessLauncher()
        launcher.setup(hydra_context=HydraContext(config_loader=loader, callbacks=None), task_function=None, config=master)
        for _ in range(2):  # the second comes from the cache
            ours = OmegaConf.to_yaml(launcher.job_config(job))
            assert ours == OmegaConf.to_yaml(loader.load_sweep_config(master, job))


class CountingLoader:
    """Hydra's config loader, counting the job compositions asked of it."""

    def __init__(self, loader):
        self.loader, self.compositions = loader, []

    def load_sweep_config(self, master, overrides):
        self.compositions.append(list(overrides))
        return self.loader.load_sweep_config(master, overrides)

    def __getattr__(self, name):
        return getattr(self.loader, name)


@pytest.mark.parametrize("command, jobs, composed", [
    (["data=iris", "regularization.alpha=0.1,1"], [["data=iris", "regularization.alpha=0.1"], ["data=iris", "regularization.alpha=1"]], 0),
    (["optim=adam,sgd", "seed=0,1"], [[f"optim={o}", f"seed={s}"] for o in ("adam", "sgd") for s in (0, 1)], 2),
], ids=["values only: the sweep's own config", "swept group: once per option"])
def test_jobs_are_composed_once_per_distinct_structure(command, jobs, composed, tmp_path):
    """Hydra composes every job; the launcher composes once per distinct set of config-group
    choices, and a values-only sweep not at all (its jobs start from the sweep's config)."""
    from hydra import initialize_config_module
    from hydra.core.utils import setup_globals
    from hydra.types import HydraContext, RunMode
    from hydra_plugins.nnexp_launcher import InProcessLauncher
    from omegaconf import OmegaConf

    GlobalHydra.instance().clear()
    setup_globals()
    with initialize_config_module("nnexp.configs", **compat.hydra_version_base()):
        loader = CountingLoader(GlobalHydra.instance().config_loader())
        master = loader.load_configuration("train", [*command, "hydra.mode=MULTIRUN", f"hydra.sweep.dir={tmp_path}"], RunMode.MULTIRUN)
        launcher = InProcessLauncher()
        launcher.setup(hydra_context=HydraContext(config_loader=loader, callbacks=None), task_function=None, config=master)
        for job in jobs:
            assert OmegaConf.to_yaml(launcher.job_config(job)) == OmegaConf.to_yaml(loader.loader.load_sweep_config(master, job))
    assert len(loader.compositions) == composed


def test_cli_sweeps_draw_their_figures_and_report_in_the_background(tmp_path, monkeypatch, capsys):
    from nnexp.plots.background import wait_for_drawing

    monkeypatch.chdir(tmp_path)
    GlobalHydra.instance().clear()
    monkeypatch.setattr(sys, "argv", ["nnexp", "-m", "hydra.sweep.dir=sweep", "quiet=true", "logger=none",
                                      "data=iris", "model=logistic", "optim=lbfgs", "regularization.alpha=0.1,1"])
    cli.main()
    assert "drawing in the background" in capsys.readouterr().out
    assert (tmp_path / "sweep" / "summary.csv").is_file()
    report = tmp_path / "sweep" / "report.html"
    wait_for_drawing(tmp_path / "sweep")  # the drawing process has exited
    assert report.is_file() and "data:image/png;base64," in report.read_text()
    assert (tmp_path / "sweep" / "sweep_regularization_alpha.png").stat().st_size > 5000


@pytest.mark.parametrize("launcher", ["basic", "batched"])
def test_seed_sweeps_say_what_they_scored_and_spread_the_test_score(launch, capsys, launcher):
    """Without a validation split the objective is the training score, and the summary says so;
    data.validation_fraction holds out a validation split (Keras's validation_split) without
    early stopping. The test score's spread over seeds is reported for every grid point."""
    common = (f"launcher={launcher}", "data=iris", "model.hidden_sizes=[5]", "optim=adam", "optim.lr=0.01",
              "trainer.max_epochs=20", "seed=0,1,2")
    plain = launch(*common, sweep_dir="plain")
    output = " ".join(capsys.readouterr().out.split())  # rich wraps long lines at the console's width
    row = summary_rows(plain)[0]
    assert row["scored_on"] == "train" and "train score" in output and "val score" not in output
    assert "no validation split, so they are ranked by training score" in output
    tests = [m["test_score"] for m in job_metrics(plain).values()]
    assert float(row["std_test_score"]) == pytest.approx(np.std(tests)) and float(row["mean_test_score"]) == pytest.approx(np.mean(tests))

    held_out = launch(*common, "data.validation_fraction=0.2", sweep_dir="held_out")
    capsys.readouterr()
    row = summary_rows(held_out)[0]
    jobs = job_metrics(held_out).values()
    assert row["scored_on"] == "val"
    assert all(m["stop_reason"] != "early_stopped" and m["objective"] == m["val_score"] for m in jobs)
    assert float(row["mean_val_score"]) == pytest.approx(np.mean([m["val_score"] for m in jobs]))
    assert all(m["n_train"] == 89 for m in jobs)  # 112 training rows less ceil(20%) = 23 for validation


def test_two_validation_fractions_are_one_config_error(run_nnexp):
    from nnexp.errors import ConfigError

    with pytest.raises(ConfigError, match="data.validation_fraction"):
        run_nnexp("data=iris", "data.validation_fraction=0.2", "stopping=early_stopping", "stopping.validation_fraction=0.1")
    metrics = run_nnexp("data=iris", "data.validation_fraction=0.1", "stopping=early_stopping", "stopping.validation_fraction=0.1")
    assert "val_score" in metrics


def test_an_in_process_sweep_sets_up_the_process_for_its_training_jobs(launch, monkeypatch):
    """As a run does: Lightning quiet, the allocator tuned, the imports frozen out of the collector."""
    import nnexp.process

    calls = []
    monkeypatch.setattr(nnexp.process, "set_up_process", lambda: calls.append("set up"))
    sweep = launch("data=iris", "model=logistic", "optim=lbfgs", "regularization.alpha=0.1,1", "launcher=basic")
    assert len(summary_rows(sweep)) == 2 and calls


@pytest.mark.parametrize("where", ["override", "config dir"])
def test_hydra_mode_multirun_without_dash_m_still_sweeps(where, tmp_path, monkeypatch):
    """Single runs skip Hydra's mode probe (nnexp's configs never set hydra.mode); a mode set on
    the command line or in a user's config dir is still honoured: the command sweeps."""
    monkeypatch.chdir(tmp_path)
    grid = ["data=moons", "regularization.alpha=0.1,1.0", "trainer.max_epochs=2", "plots=false", *FAST, "hydra.sweep.dir=sweep"]
    if where == "override":
        argv = ["nnexp", "hydra.mode=MULTIRUN", *grid]
    else:
        (tmp_path / "mine").mkdir()  # a primary config of the user's that sets the mode (Hydra reads it there)
        (tmp_path / "mine" / "mine.yaml").write_text("defaults:\n  - train\n  - _self_\nhydra:\n  mode: MULTIRUN\n")
        argv = ["nnexp", "--config-d", str(tmp_path / "mine"), "--config-name", "mine", *grid]  # argparse's abbreviation
    GlobalHydra.instance().clear()
    monkeypatch.setattr(sys, "argv", argv)
    cli.main()
    assert sorted(path.parent.name for path in (tmp_path / "sweep").glob("[0-9]*/metrics.json")) == ["0", "1"]
