"""The `nnexp` console script, run as a user would (the only subprocess tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

NNEXP = str(Path(sys.executable).with_name("nnexp"))


def nnexp(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([NNEXP, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_default_run_writes_its_run_dir(tmp_path):
    run_dir = tmp_path / "run"
    result = nnexp("trainer.max_epochs=3", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "results (breast_cancer)" in result.stdout and "accuracy" in result.stdout
    assert "Traceback" not in result.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and metrics["status"] == "ok"
    assert (run_dir / "history.csv").is_file() and (run_dir / "config.yaml").is_file()
    from nnexp.plots.background import wait_for_drawing

    wait_for_drawing(run_dir)  # the figures are drawn by a detached process: wait until it exits
    assert (run_dir / "curves.png").stat().st_size > 2000 and (run_dir / "confusion.png").stat().st_size > 2000


def test_user_errors_are_one_line_with_nonzero_exit(tmp_path):
    bad_value = nnexp("regularization.alpha=-1", f"hydra.run.dir={tmp_path / 'bad'}", cwd=tmp_path)
    assert bad_value.returncode == 2
    assert bad_value.stderr.strip().splitlines() == [
        "error: regularization.alpha=-1 is not allowed: a number >= 0 (the L2 penalty; 0 turns it off)"
    ]
    unknown = nnexp("data=irs", cwd=tmp_path)
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("error: data=irs is not an option; choose one of: blobs, breast_cancer")
    assert "Traceback" not in bad_value.stderr + unknown.stderr


def test_help_lists_groups_and_options(tmp_path):
    result = nnexp("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "nnexp: train feed-forward nets" in result.stdout
    assert "optim: adam, adam_torch, gd, lbfgs, lbfgs_torch, rmsprop, sgd, sgd_torch" in result.stdout
    assert "data: blobs, breast_cancer" in result.stdout and "_tabular" not in result.stdout  # shared parts are no options


def test_cfg_with_a_sweep_is_one_line(tmp_path, monkeypatch, capsys):
    from nnexp import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["nnexp", "-m", "data=iris", "seed=0,1", "--cfg", "hydra"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: --cfg and --info show one run's config: drop -m (e.g. nnexp --cfg job data=iris seed=0); "
        "a finished sweep records its own in <sweep dir>/multirun.yaml"]
