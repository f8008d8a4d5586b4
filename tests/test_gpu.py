"""The GPU paths against their CPU runs: device-resident data, bf16, channels_last, and the
batched trainer (Adam, SGD and L-BFGS stacks) on CUDA. Skipped without a CUDA device; the GPU
check (scripts/gpu_check.sh) runs them where one is lent."""

from __future__ import annotations

import pytest
import torch

from nnexp.training.module import NetModule

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_a_cnn_on_the_gpu_trains_channels_last_in_bf16_on_device_data(run_nnexp, tmp_path, monkeypatch):
    placed = []
    original = NetModule.device_splits

    def recording(self):
        splits = original(self)
        placed.extend((split.X.device.type, split.X.is_contiguous(memory_format=torch.channels_last)) for split in splits.values())
        return splits

    monkeypatch.setattr(NetModule, "device_splits", recording)
    run = ["data=digits_images", "model=cnn_small", "stopping=none", "trainer.max_epochs=15", "batch_size=64", "optim.lr=0.003"]
    gpu = run_nnexp(*run, "trainer=gpu", f"paths.output_dir={tmp_path / 'gpu'}")
    assert placed and all(place == ("cuda", True) for place in placed)
    assert gpu["precision"] == "bf16-mixed"
    cpu = run_nnexp(*run, "trainer.precision=32-true", f"paths.output_dir={tmp_path / 'cpu'}")
    assert gpu["epochs"] == cpu["epochs"] == 15
    # bf16 rounding changes the path, not where it leads: both fit the digits
    assert gpu["test_score"] > 0.9 and abs(gpu["test_score"] - cpu["test_score"]) < 0.03


def assert_gpu_stack_matches_cpu(sweep, grid: list[str], jobs: int, loss: dict) -> None:
    """The grid's batched members on CUDA against its sequential CPU runs, fold by fold:
    training loss within ``loss`` (pytest.approx's rel/abs), validation score within 0.02."""
    cpu = sweep("cpu", *grid)
    gpu = sweep("gpu", *grid, "launcher=batched", "trainer=gpu")
    assert gpu.keys() == cpu.keys() and len(gpu) == jobs
    for job, metrics in gpu.items():
        assert metrics["batched"], job
        for mine, theirs in zip(metrics["folds"], cpu[job]["folds"], strict=True):
            assert mine["train_loss"] == pytest.approx(theirs["train_loss"], **loss), job
            assert mine["val_score"] == pytest.approx(theirs["val_score"], abs=0.02), job


@pytest.mark.parametrize("optimiser", [["optim=adam", "optim.lr=0.01,0.003"], ["optim=sgd", "optim.lr=0.05", "optim.momentum=0.5,0.9"]],
                         ids=["adam", "sgd"])
def test_batched_members_on_the_gpu_match_their_sequential_cpu_runs(sweep, optimiser):
    grid = ["data=breast_cancer", "cv=3", "trainer.max_epochs=25", "stopping=none", "regularization.alpha=1e-4,1", *optimiser]
    assert_gpu_stack_matches_cpu(sweep, grid, jobs=4, loss=dict(rel=1e-3, abs=1e-4))  # fp32: other kernels, other rounding


def test_an_lbfgs_stack_on_the_gpu_matches_the_sequential_cpu_runs(sweep):
    grid = ["data=breast_cancer", "cv=3", "optim=lbfgs", "model.hidden_sizes=[20]", "optim.max_iter=60", "regularization.alpha=1e-2,1,100"]
    # float64 on both devices: the iterates agree to rounding, which L-BFGS may amplify late in a fit
    assert_gpu_stack_matches_cpu(sweep, grid, jobs=3, loss=dict(rel=1e-4))
