"""Every option of every config group composes and trains for a few epochs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nnexp.preflight import config_groups

GROUPS = config_groups()
NEEDS_PACKAGE = {("logger", "tensorboard"): "tensorboard", ("logger", "mlflow"): "mlflow"}
SKIP = {("trainer", "gpu"), ("trainer", "ddp")}  # covered by their own tests (test_gpu_trainer..., test_distributed.py)


def group_options():
    for group, options in sorted(GROUPS.items()):
        for option in options:
            if not option.startswith("_") and group != "experiment" and (group, option) not in SKIP:
                yield group, option


def test_groups_ship_with_the_package():
    assert {"data", "model", "optim", "schedule", "regularization", "stopping", "trainer", "logger"} <= set(GROUPS)
    assert {"breast_cancer", "digits", "iris", "wine", "diabetes", "moons", "circles", "blobs", "wave", "csv"} <= set(
        GROUPS["data"]
    )
    assert {"gd", "sgd", "adam", "rmsprop", "lbfgs"} <= set(GROUPS["optim"])
    assert {"constant", "invscaling", "adaptive", "step", "cosine"} <= set(GROUPS["schedule"])


IDX_DATA = {"mnist", "fashion_mnist", "kmnist", "permuted_mnist"}


@pytest.mark.parametrize("group,option", list(group_options()))
def test_every_option_trains(group, option, run_nnexp, csv_file, tiny_idx_root):
    extra = []
    if (group, option) == ("data", "csv"):
        extra = [f"data.path={csv_file()}", "data.target=label"]
    if group == "data" and option in IDX_DATA:
        extra = [f"data.root={tiny_idx_root}"]
    if (group, option) == ("model", "cnn"):  # 28x28 images: the default CNN does not fit 8x8 digits
        extra = ["data=mnist", f"data.root={tiny_idx_root}"]
    if (group, option) == ("model", "cnn_small"):
        extra = ["data=digits_images"]
    if (group, option) in (("optim", "lbfgs"), ("sweep", "alpha_grid"), ("sweep", "hidden_sizes")):  # L-BFGS: iterations, not trainer.max_epochs
        extra = ["optim.max_iter=3"]
    if (group, option) in NEEDS_PACKAGE:
        pytest.importorskip(NEEDS_PACKAGE[group, option])
    metrics = run_nnexp(f"{group}={option}", *extra)
    assert metrics["status"] == "ok"
    assert 1 <= metrics["epochs"] <= 3
    assert metrics["params"] > 0
    score = metrics["val_score"] if "cv" in metrics else metrics["test_score"]  # CV jobs have no test score
    assert score == pytest.approx(score)  # finite, not NaN
    if (group, option) == ("callbacks", "checkpoint"):
        assert (Path(metrics["run_dir"]) / "checkpoints" / "last.ckpt").is_file()
    if (group, option) == ("logger", "csv"):
        assert (Path(metrics["run_dir"]) / "csv" / "metrics.csv").is_file()


@pytest.mark.parametrize("experiment", GROUPS["experiment"])
def test_every_experiment_trains(experiment, run_nnexp, tiny_idx_root):
    # with its figures, as a user runs it: each experiment's model and data get their own panels
    metrics = run_nnexp(f"experiment={experiment}", f"data.root={tiny_idx_root}" if "mnist" in experiment else "seed=0", "plots=true")
    assert metrics["status"] == "ok"
    assert (Path(metrics["run_dir"]) / "curves.png").is_file()


def test_gpu_trainer_without_gpu_is_a_config_error(run_nnexp):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    from nnexp.errors import ConfigError

    with pytest.raises(ConfigError, match="trainer.accelerator.*trainer=cpu"):
        run_nnexp("trainer=gpu")


def test_missing_logger_package_is_a_config_error(run_nnexp):
    from importlib.util import find_spec

    if find_spec("tensorboard") or find_spec("tensorboardX"):
        pytest.skip("a TensorBoard writer is installed")
    from nnexp.errors import ConfigError

    with pytest.raises(ConfigError, match="logger='tensorboard'.*: pip install tensorboard") as error:
        run_nnexp("logger=tensorboard")
    assert "\n" not in str(error.value)  # Lightning's own message runs to three lines
    if find_spec("mlflow") is None:
        with pytest.raises(ConfigError, match="logger='mlflow'.*: pip install mlflow") as error:
            run_nnexp("logger=mlflow")
        assert "\n" not in str(error.value)


def test_no_packaged_config_sets_hydra_mode():
    """A single run skips Hydra's mode probe on this promise (nnexp.command.mode_is_unset)."""
    from importlib import resources

    import yaml

    def files(folder):
        for item in folder.iterdir():
            if item.is_dir():
                yield from files(item)
            elif item.name.endswith(".yaml"):
                yield item

    configs = list(files(resources.files("nnexp.configs")))
    assert len(configs) > 50
    hydra_group = resources.files("nnexp.configs").joinpath("hydra")
    for config in configs:
        text = yaml.safe_load(config.read_text()) or {}
        assert "mode" not in (text.get("hydra") or {}), config.name
        assert "hydra.mode" not in config.read_text(), config.name
        if str(config).startswith(str(hydra_group)):  # packaged under the hydra node
            assert "mode" not in text, config.name
