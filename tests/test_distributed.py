"""trainer=ddp: two CPU processes on the gloo backend give the one-process result."""

from __future__ import annotations

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
