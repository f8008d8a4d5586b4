"""The GPU paths against their CPU runs: device-resident data, bf16, channels_last, and the
batched trainer (Adam and L-BFGS stacks) on CUDA. Skipped without a CUDA device; the GPU check
(scripts/gpu_check.sh) runs them where one is lent."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

from nnexp import cli
from nnexp.models.module import NetModule

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

FAST = ["quiet=true", "logger=none", "plots=false", "hydra.callbacks.sweep_summary.figures=foreground"]


@pytest.fixture
def nnexp(tmp_path, monkeypatch):
    """nnexp(name, *args) runs the command in-process; returns {job: metrics} (one run: {"run": ...})."""
    monkeypatch.chdir(tmp_path)

    def _nnexp(name: str, *args: str) -> dict[str, dict]:
        GlobalHydra.instance().clear()
        multirun = args and args[0] == "-m"
        # each its own result store: a second sweep of the same grid would otherwise reuse the first's fits
        if multirun:
            argv = ["nnexp", "-m", f"hydra.sweep.dir={name}", f"paths.store_dir={name}_store", *FAST, *args[1:]]
        else:
            argv = ["nnexp", f"paths.output_dir={name}", *FAST, *args]
        monkeypatch.setattr(sys, "argv", argv)
        cli.main()
        if not multirun:
            return {"run": json.loads((tmp_path / name / "metrics.json").read_text())}
        return {p.parent.name: json.loads(p.read_text()) for p in (tmp_path / name).glob("[0-9]*/metrics.json")}

    return _nnexp


def test_a_cnn_on_the_gpu_trains_channels_last_in_bf16_on_device_data(nnexp, monkeypatch):
    placed = []
    original = NetModule.device_splits

    def recording(self):
        splits = original(self)
        placed.extend((split.X.device.type, split.X.is_contiguous(memory_format=torch.channels_last)) for split in splits.values())
        return splits

    monkeypatch.setattr(NetModule, "device_splits", recording)
    run = ["data=digits_images", "model=cnn_small", "stopping=none", "trainer.max_epochs=15", "batch_size=64", "optim.lr=0.003"]
    gpu = nnexp("gpu", *run, "trainer=gpu")["run"]
    assert placed and all(place == ("cuda", True) for place in placed)
    assert gpu["precision"] == "bf16-mixed"
    cpu = nnexp("cpu", *run, "trainer.precision=32-true")["run"]
    assert gpu["epochs"] == cpu["epochs"] == 15
    # bf16 rounding changes the path, not where it leads: both fit the digits
    assert gpu["test_score"] > 0.9 and abs(gpu["test_score"] - cpu["test_score"]) < 0.03


@pytest.mark.parametrize("optimiser", [["optim=adam", "optim.lr=0.01,0.003"], ["optim=sgd", "optim.lr=0.05", "optim.momentum=0.5,0.9"]],
                         ids=["adam", "sgd"])
def test_batched_members_on_the_gpu_match_their_sequential_cpu_runs(nnexp, optimiser):
    grid = ["-m", "data=breast_cancer", "cv=3", "trainer.max_epochs=25", "stopping=none", "regularization.alpha=1e-4,1", *optimiser]
    cpu = nnexp("cpu", *grid)
    gpu = nnexp("gpu", *grid, "launcher=batched", "trainer=gpu")
    assert gpu.keys() == cpu.keys() and len(gpu) == 4
    for job, metrics in gpu.items():
        assert metrics["batched"], job
        for mine, theirs in zip(metrics["folds"], cpu[job]["folds"]):
            assert mine["epochs"] == theirs["epochs"] == 25
            assert mine["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-3, abs=1e-4), job
            assert mine["val_score"] == pytest.approx(theirs["val_score"], abs=0.02), job


def test_an_lbfgs_stack_on_the_gpu_matches_the_sequential_cpu_runs(nnexp):
    grid = ["-m", "data=breast_cancer", "cv=3", "optim=lbfgs", "model.hidden_sizes=[20]", "optim.max_iter=60", "regularization.alpha=1e-2,1,100"]
    cpu = nnexp("cpu", *grid)
    gpu = nnexp("gpu", *grid, "launcher=batched", "trainer=gpu")
    assert gpu.keys() == cpu.keys() and len(gpu) == 3
    for job, metrics in gpu.items():
        assert metrics["batched"], job
        for mine, theirs in zip(metrics["folds"], cpu[job]["folds"]):
            # float64 on both devices: the iterates agree to rounding, which L-BFGS may amplify late in a fit
            assert mine["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-4), job
            assert mine["val_score"] == pytest.approx(theirs["val_score"], abs=0.02), job
