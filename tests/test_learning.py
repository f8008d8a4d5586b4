"""Each task learns, seeds control the numbers, and the run dir holds what it promises."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import yaml


def majority_share(y) -> float:
    return np.bincount(np.asarray(y)).max() / len(y)


def test_binary_classification_beats_majority_class(run_nnexp):
    from sklearn.datasets import load_breast_cancer

    metrics = run_nnexp("data=breast_cancer", "trainer.max_epochs=60")
    baseline = majority_share(load_breast_cancer().target)  # 0.63
    assert metrics["task"] == "binary" and metrics["score_name"] == "accuracy"
    assert metrics["test_score"] > baseline + 0.25


def test_multiclass_classification_beats_chance(run_nnexp):
    metrics = run_nnexp("data=digits", "trainer.max_epochs=40")
    assert metrics["task"] == "multiclass"
    assert metrics["test_score"] > 0.1 + 0.75


def test_regression_beats_predicting_the_mean(run_nnexp):
    # R2 = 0 is the score of always predicting the training mean.
    metrics = run_nnexp("data=wave", "model.hidden_sizes=[50,50]", "model.activation=tanh", "optim=lbfgs", "trainer.max_epochs=30")
    assert metrics["task"] == "regression" and metrics["score_name"] == "r2"
    assert metrics["test_score"] > 0.6


def test_linear_and_logistic_models_have_no_hidden_layer(run_nnexp):
    linear = run_nnexp("model=linear", "data=wave")
    logistic = run_nnexp("model=logistic", "data=iris")
    assert linear["params"] == 1 + 1  # one weight, one bias
    assert logistic["params"] == 4 * 3 + 3


def test_same_seed_gives_identical_metrics(run_nnexp):
    overrides = ("data=moons", "model.dropout=0.2", "batch_size=32", "trainer.max_epochs=5")
    first, second = run_nnexp(*overrides, "seed=3"), run_nnexp(*overrides, "seed=3")
    other = run_nnexp(*overrides, "seed=4")
    keys = ("train_loss", "train_score", "test_loss", "test_score")
    assert [first[k] for k in keys] == [second[k] for k in keys]
    assert first["train_loss"] != other["train_loss"]


def test_run_dir_holds_config_metrics_and_history(run_nnexp):
    metrics = run_nnexp("trainer.max_epochs=4", "stopping=none")
    run_dir = Path(metrics["run_dir"])
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["model"]["hidden_sizes"] == [100]
    rows = list(csv.DictReader((run_dir / "history.csv").open()))
    assert [int(row["epoch"]) for row in rows] == [1, 2, 3, 4]
    assert {"train_loss", "train_score", "lr"} <= set(rows[0])
    for key in ("train_score", "test_score", "train_loss", "test_loss", "epochs", "stop_reason", "fit_seconds", "params"):
        assert key in metrics
    assert metrics["stop_reason"] == "max_epochs" and metrics["epochs"] == 4
    assert metrics["params"] == 30 * 100 + 100 + 100 + 1


def test_objective_is_validation_score_never_test(run_nnexp):
    plain = run_nnexp()
    assert plain["objective"] == pytest.approx(plain["train_score"])
    held_out = run_nnexp("stopping=early_stopping")
    assert held_out["objective"] == pytest.approx(held_out["val_score"])


def test_scaling_is_fitted_on_training_rows_only():
    from sklearn.datasets import load_wine

    from nnexp.data.sources import BundledSource
    from nnexp.data.splits import make_fit_data

    bundle = BundledSource(loader=load_wine, name="wine").load()
    data = make_fit_data(bundle)
    train = data.train.X.double()
    assert train.mean(0).abs().max() < 1e-5 and (train.std(0, unbiased=False) - 1).abs().max() < 1e-4
    test_mean = data.test.X.double().mean(0).abs().max()
    assert test_mean > 1e-3  # test rows are transformed with the training statistics, not refitted


def test_classification_split_is_stratified():
    from sklearn.datasets import load_iris

    from nnexp.data.sources import BundledSource

    bundle = BundledSource(loader=load_iris, name="iris").load()
    assert np.bincount(bundle.y_test).tolist() == [13, 13, 12] or sorted(np.bincount(bundle.y_test)) == [12, 13, 13]
    assert len(bundle.y_test) == 38  # test_size 0.25 of 150, rounded up


def test_validate_mode_checks_without_training(run_nnexp, compose_cfg):
    import contextlib
    import io

    from nnexp.runner import run

    cfg = compose_cfg("mode=validate", "data=wine")
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        objective = run(cfg)
    assert math.isnan(objective)  # nothing was trained
    assert "config OK" in output.getvalue() and "wine" in output.getvalue()
    assert not (Path(cfg.paths.output_dir) / "metrics.json").exists()


def test_user_config_dir_adds_options(tmp_path):
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from nnexp.compat import hydra_version_base

    user = tmp_path / "my_configs" / "data"
    user.mkdir(parents=True)
    (user / "tiny_moons.yaml").write_text(
        "defaults:\n  - _tabular\n  - _self_\n"
        "_target_: nnexp.data.sources.GeneratedSource\nname: tiny_moons\n"
        "generator:\n  _target_: sklearn.datasets.make_moons\n  _partial_: true\n  n_samples: 40\n"
    )
    GlobalHydra.instance().clear()
    with initialize_config_module("nnexp.configs", **hydra_version_base()):
        cfg = compose("train", overrides=[f"hydra.searchpath=[file://{tmp_path / 'my_configs'}]", "data=tiny_moons"])
    assert cfg.data.name == "tiny_moons" and cfg.data.test_size == 0.25


def test_threads_applies_to_the_run_only(run_nnexp, monkeypatch):
    import torch

    seen = []
    from nnexp import runner

    real_produce = runner.produce
    monkeypatch.setattr(runner, "produce", lambda *args: seen.append(torch.get_num_threads()) or real_produce(*args))
    before = torch.get_num_threads()
    target = 1 if before > 1 else 2
    run_nnexp("data=iris", f"threads={target}", "trainer.max_epochs=2")
    assert seen == [target] and torch.get_num_threads() == before


@pytest.mark.parametrize("overrides, expect_one", [
    (["data=breast_cancer"], True),  # the default run: a 30-100-2 MLP step is ~6e5 multiply-adds
    (["data=digits", "model.hidden_sizes=[1000,1000]", "model.activation=relu"], False),
    (["data=digits_images", "model=cnn_small"], False),
])
def test_threads_auto_uses_one_thread_for_small_mlps(run_nnexp, monkeypatch, overrides, expect_one):
    """threads=auto (the default): one intra-op thread where a second gains nothing; wide layers
    and conv nets keep one per free core (never more than torch's default)."""
    import torch

    from nnexp import runner
    from nnexp.training import hardware

    seen = []
    real_produce = runner.produce
    monkeypatch.setattr(runner, "produce", lambda *args: seen.append(torch.get_num_threads()) or real_produce(*args))
    monkeypatch.setattr(hardware, "other_runnable_tasks", lambda: 0)  # a quiet machine, whatever else runs
    before = torch.get_num_threads()
    run_nnexp(*overrides, "trainer.max_epochs=1")
    assert seen == [1 if expect_one else min(before, hardware.usable_cores())]
    assert torch.get_num_threads() == before


def test_threads_auto_leaves_busy_cores_alone(monkeypatch):
    """Wide work uses only the cores nobody else is running on, and at least one."""
    from nnexp.training import hardware

    monkeypatch.setattr(hardware, "usable_cores", lambda: 8)
    monkeypatch.setattr(hardware.torch, "get_num_threads", lambda: 8)
    for others, expected in ((0, 8), (3, 5), (8, 1), (20, 1)):
        monkeypatch.setattr(hardware, "other_runnable_tasks", lambda others=others: others)
        assert hardware.auto_threads("auto", 1e9) == expected
        assert hardware.auto_threads("auto", None) == expected  # conv nets: work not counted
    assert hardware.auto_threads("auto", hardware.AUTO_THREADS_MIN_WORK / 2) == 1
    assert hardware.auto_threads(3, 1e9) == 3 and hardware.auto_threads(None, 1e9) is None


def test_other_runnable_tasks_sees_busy_processes():
    """Linux's instantaneous runnable count: two spinning processes are seen as busy cores."""
    import subprocess
    import sys

    from nnexp.training import hardware

    if not Path("/proc/loadavg").exists():
        pytest.skip("no /proc/loadavg on this system")
    # Each spins until its stdin closes (the test's end, or the test process dying).
    ready = ("import select, sys\nsys.stdout.write('go\\n'); sys.stdout.flush()\n"
             "while not select.select([sys.stdin], [], [], 0)[0]: pass\n")
    spinners = [subprocess.Popen([sys.executable, "-c", ready], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                for _ in range(2)]
    try:
        for spinner in spinners:
            assert spinner.stdout.readline() == "go\n"  # each is spinning now
        assert hardware.other_runnable_tasks() >= 2
    finally:
        for spinner in spinners:
            spinner.stdin.close()  # its cue to stop
            spinner.wait()


def test_history_file_grows_epoch_by_epoch_during_the_fit(compose_cfg, tmp_path):
    """A long run can be watched: history.csv has every finished epoch's row while training goes on."""
    import pytorch_lightning as pl

    from nnexp.data.loading import load_data
    from nnexp.data.splits import make_fit_data
    from nnexp.factory import instantiate
    from nnexp.fit import Factories, fit_and_score

    path = tmp_path / "history.csv"
    seen = []

    class Watcher(pl.Callback):  # runs before the history file's callback in each epoch
        def on_train_epoch_end(self, trainer, pl_module):
            seen.append(len(path.read_text().splitlines()) - 1 if path.exists() else 0)

    cfg = compose_cfg("data=iris", "stopping=none", "trainer.max_epochs=5")
    bundle = load_data(cfg.data)
    data = make_fit_data(bundle, seed=cfg.seed)
    result = fit_and_score(cfg, Factories.from_config(cfg), bundle, data, instantiate(cfg.stopping),
                           instantiate(cfg.regularization), progress_factory=Watcher, history_file=path)
    assert seen == [0, 1, 2, 3, 4]
    rows = list(csv.DictReader(path.open()))
    assert [int(row["epoch"]) for row in rows] == [1, 2, 3, 4, 5]
    assert [float(row["train_loss"]) for row in rows] == [row["train_loss"] for row in result.history]


def test_a_grid_shows_its_refits_test_score_and_the_command_that_trains_it(sweep, capsys, run_nnexp, tmp_path):
    """quiet=true too: the terminal gives the refit's test score and a command that trains the
    refit model (its test score is the refit's); the report puts that score in the best row."""
    import re

    sweep("grid", "data=iris", "optim=lbfgs", "optim.max_iter=30", "model.hidden_sizes=[5]", "cv=2", "refit=true",
          "regularization.alpha=0.1,10")
    out = capsys.readouterr().out
    refit_score = float(re.search(r"refit on the whole training split: test accuracy (\d\.\d+)", out).group(1))
    command = re.search(r"the refit model again: (nnexp .*cv=1)", " ".join(out.split())).group(1)
    report = (tmp_path / "grid" / "report.html").read_text()
    assert f"<b>{refit_score:.4f}</b>" in report and f"<td>{refit_score:.4f} (refit)</td>" in report  # marked: not a CV mean
    overrides = [word for word in command.split()[1:] if not word.startswith(("quiet", "logger", "plots", "hydra"))]
    assert round(run_nnexp(*overrides, fast=False)["test_score"], 4) == refit_score
