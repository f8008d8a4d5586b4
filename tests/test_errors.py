"""Bad input stops the run before training with one line naming the key and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nnexp.preflight import unknown_group_option
from nnexp.errors import ConfigError, DataError, NnexpError


def test_unknown_group_option_names_group_and_options():
    message = unknown_group_option(["data=mnistt", "seed=1"])
    assert message.startswith("data=mnistt is not an option; choose one of:")
    assert "breast_cancer" in message and "\n" not in message
    assert unknown_group_option(["-m", "optim=adam,sgdd"]).startswith("optim=sgdd is not an option")
    assert unknown_group_option(["data=moons", "optim=lbfgs", "model.hidden_sizes=[5]"]) is None
    assert unknown_group_option(["regularization=null"]).startswith("regularization=null is not an option")  # Hydra: a ValueError
    assert unknown_group_option(["--config-dir", "mine", "data=my_own"]) is None


@pytest.mark.parametrize(
    "override,match",
    [
        ("regularization.alpha=-1", r"regularization.alpha=-1 is not allowed: a number >= 0"),
        ("regularization.l1=-0.5", r"regularization.l1=-0.5 is not allowed"),
        ("optim.lr=-0.1", r"optim.lr=-0.1 is not allowed: a learning rate > 0"),
        ("optim.lr=0", r"optim.lr=0 is not allowed"),
        ("model.hidden_sizes=[10,0]", r"model.hidden_sizes=\[10, 0\] is not allowed: a list of positive whole numbers"),
        ("model.hidden_sizes=[2.5]", r"model.hidden_sizes=\[2.5\] is not allowed"),
        ("model.hidden_sizes=10", r"model.hidden_sizes=10 is not allowed"),
        ("batch_size=0", r"batch_size=0 is not allowed: auto, full, or a whole number >= 1"),
        ("batch_size=some", r"batch_size='some' is not allowed"),
        ("model.activation=sigmoid", r"model.activation='sigmoid' is not allowed: one of relu, tanh, logistic"),
        ("model.dropout=1.5", r"model.dropout=1.5 is not allowed"),
        ("trainer.max_epochs=0", r"trainer.max_epochs=0 is not allowed"),
        ("data.test_size=1.5", r"data.test_size=1.5 is not allowed"),
        ("data.task=clustering", r"data.task='clustering' is not allowed"),
        ("stopping.monitor=val_loss", r"stopping.validation_fraction=0.0 is not allowed: > 0 when stopping.monitor=val_loss"),
        ("mode=fit", r"mode='fit' is not allowed"),
        ("regularization.alpha=nan", r"regularization.alpha=nan is not allowed: a finite number"),
        ("regularization.l1=nan", r"regularization.l1=nan is not allowed: a finite number"),
        ("regularization.alpha=inf", r"regularization.alpha=inf is not allowed: a finite number"),
        ("optim=sgd optim.momentum=nan", r"optim.momentum=nan is not allowed: a finite number"),
        ("optim.lr=inf", r"optim.lr=inf is not allowed: a finite number"),
        ("optim=sgd optim.momentum=1.5", r"optim.momentum=1.5 is not allowed: a momentum in \[0, 1\]"),
        ("stopping.divergence_factor=0.5", r"stopping.divergence_factor=0.5 is not allowed: a factor > 1"),
        ("cv=50", r"cv=50 is not allowed: at most 37 folds: the smallest class has 37 training rows"),
        ("trainer.devices=0", r"trainer.devices=0 is not allowed: a value Lightning's Trainer accepts"),
        ("model.activation=null", r"model.activation=None is not allowed: one of relu, tanh"),
        ("model.hidden_sizes=null", r"model.hidden_sizes=None is not allowed: a list of positive whole numbers"),
        ("optim.lr=null", r"optim.lr=None is not allowed: a learning rate > 0"),
        ("+trainer.gradient_clip_val=1", r"trainer.gradient_clip_val=1 is not allowed: .*manual optimization"),
        ("optim=lbfgs schedule=invscaling", r"^schedule='invscaling' is not allowed: schedule=constant with optim=lbfgs"),
        ("stopping=early_stopping stopping.validation_fraction=0.001",
         r"validation_fraction=0.001 is not allowed: a fraction that holds out at least 3 of the 112 training rows"),
    ],
)
def test_bad_values_are_config_errors(override, match, run_nnexp):
    with pytest.raises(ConfigError, match=match) as error:
        run_nnexp("data=iris", *override.split())
    assert "\n" not in str(error.value)


def test_lbfgs_refuses_minibatches(run_nnexp):
    with pytest.raises(ConfigError, match="batch_size=32 is not allowed: full for L-BFGS"):
        run_nnexp("optim=lbfgs", "batch_size=32")


@pytest.mark.parametrize("overrides", [["stopping=early_stopping"], ["stopping.monitor=val_loss"], ["stopping.monitor=val_score"]])
def test_lbfgs_with_early_stopping_is_decided_by_the_pairings_table_alone(overrides, compose_cfg, monkeypatch):
    from nnexp import pairings
    from nnexp.config import check_config

    cfg = compose_cfg("data=iris", "optim=lbfgs", *overrides)
    with pytest.raises(ConfigError) as error:
        check_config(cfg)
    assert error.value.key == "stopping" and "use stopping=convergence" in str(error.value) and "\n" not in str(error.value)
    monkeypatch.setattr(pairings, "RULES", tuple(row for row in pairings.RULES if row[2] != "early_stopping"))
    check_config(cfg)  # without the table's row, nothing else refuses it


def test_csv_path_that_does_not_exist(run_nnexp, tmp_path):
    with pytest.raises(DataError, match=r"data.path='.*nope.csv': no such file"):
        run_nnexp("data=csv", f"data.path={tmp_path / 'nope.csv'}", "data.target=label")


def test_csv_without_path_or_target(run_nnexp, csv_file):
    with pytest.raises(ConfigError, match="data.path=None is not allowed"):
        run_nnexp("data=csv", "data.target=label")
    with pytest.raises(ConfigError, match="data.target=None is not allowed"):
        run_nnexp("data=csv", f"data.path={csv_file()}")


def test_csv_missing_target_column(run_nnexp, csv_file):
    with pytest.raises(DataError, match=r"data.target='lable': no such column in my.csv; columns are: x1, x2, noise, label"):
        run_nnexp("data=csv", f"data.path={csv_file()}", "data.target=lable")


def test_csv_non_numeric_feature_column(run_nnexp, csv_file):
    path = csv_file(city=["paris", "rome"] * 60)
    with pytest.raises(DataError, match=r"column\(s\) city are not numeric; .* data.drop"):
        run_nnexp("data=csv", f"data.path={path}", "data.target=label")
    metrics = run_nnexp("data=csv", f"data.path={path}", "data.target=label", "data.drop=[city]")
    assert metrics["status"] == "ok"


def test_csv_continuous_target_for_classification(run_nnexp, csv_file):
    path = csv_file(price=np.linspace(0.5, 99.5, 120))
    with pytest.raises(DataError, match=r"data.task=classification, but the target is continuous \(120 distinct values\); use data.task=regression"):
        run_nnexp("data=csv", f"data.path={path}", "data.target=price", "data.drop=[label]", "data.task=classification")
    metrics = run_nnexp("data=csv", f"data.path={path}", "data.target=price", "data.drop=[label]")
    assert metrics["task"] == "regression"


def test_nan_in_data(run_nnexp, csv_file):
    values = np.ones(120)
    values[[3, 7]] = np.nan
    path = csv_file(bad=values)
    with pytest.raises(DataError, match=r"2 NaN or infinite feature values in column\(s\) bad"):
        run_nnexp("data=csv", f"data.path={path}", "data.target=label")


def test_divergence_is_recorded_not_raised(run_nnexp):
    metrics = run_nnexp("optim=sgd", "optim.lr=1e6", "data=diabetes", "trainer.max_epochs=50", fast=False)
    assert metrics["status"] == "diverged" and metrics["stop_reason"] == "diverged"
    assert metrics["epochs"] < 50
    assert metrics["objective"] != metrics["objective"]  # NaN objective, so a sweep ranks it last
    saved = json.loads((Path(metrics["run_dir"]) / "metrics.json").read_text())
    assert saved["status"] == "diverged"


def test_all_user_errors_share_one_base_class():
    assert issubclass(ConfigError, NnexpError) and issubclass(DataError, NnexpError)


def test_removing_a_config_group_is_one_line(run_nnexp):
    with pytest.raises(NnexpError, match=r"^~regularization is not allowed: every run is built from a regularization option"):
        run_nnexp("data=iris", "~regularization")
