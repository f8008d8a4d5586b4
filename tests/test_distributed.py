"""trainer=ddp: two CPU processes on the gloo backend give the one-process result."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

KEYS = ("train_loss", "train_score", "test_loss", "test_score")


@pytest.mark.parametrize(
    "overrides",
    [("optim=gd", "trainer.max_epochs=15"), ("optim=adam", "batch_size=64", "trainer.max_epochs=6")],
    ids=["full-batch", "minibatch"],
)
def test_two_processes_match_one(overrides, run_nnexp):
    common = ("stopping=none", "plots=false", *overrides)
    single = run_nnexp(*common, fast=False)
    parallel = run_nnexp(*common, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", fast=False)
    for key in KEYS:
        assert parallel[key] == pytest.approx(single[key], abs=1e-4), key
    history = (Path(parallel["run_dir"]) / "history.csv").read_text().splitlines()
    assert len(history) == 1 + parallel["epochs"] == 1 + single["epochs"]


def test_ddp_on_more_devices_than_the_machine_has_is_a_config_error(run_nnexp):
    import torch

    from nnexp.errors import ConfigError

    if torch.cuda.device_count() >= 64:
        pytest.skip("this machine has 64 GPUs")
    with pytest.raises(ConfigError, match="trainer.accelerator"):
        run_nnexp("trainer=ddp", "trainer.accelerator=gpu", "trainer.devices=64")


def test_one_spawned_process_hands_back_its_history_and_keeps_the_loggers_rows(run_nnexp):
    # trainer=ddp on one device still trains in a spawned process (world size 1): its epochs and
    # history come back as two processes' do (they were lost: "after 0 epochs", an empty
    # history.csv), and the CSV logger's epoch rows stay (the launching process started the file
    # afresh with the final scores only)
    run = run_nnexp("stopping=none", "plots=false", "logger=csv", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=1")
    history = (Path(run["run_dir"]) / "history.csv").read_text().splitlines()
    assert run["epochs"] == run["max_epochs"] == 3 and len(history) == 1 + 3
    with open(Path(run["run_dir"]) / "csv" / "metrics.csv") as file:
        rows = list(csv.DictReader(file))
    assert [row["step"] for row in rows] == ["1", "2", "3", "3"] and rows[0]["train_loss"] and not rows[0]["test_score"]
    assert float(rows[-1]["test_score"]) == pytest.approx(run["test_score"])
