"""Shared fixtures: compose nnexp's config in-process and run it on small data."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

FAST = ["quiet=true", "logger=none", "trainer.max_epochs=3"]


@pytest.fixture
def compose_cfg(tmp_path):
    """compose_cfg(*overrides) -> the composed config, writing into a fresh run dir."""

    def _compose(*overrides: str, fast: bool = True):
        GlobalHydra.instance().clear()
        with initialize_config_module("nnexp.configs", version_base="1.3"):
            return compose(
                "train", overrides=[f"paths.output_dir={tmp_path / 'run'}", *(FAST if fast else ["quiet=true", "logger=none"]), *overrides]
            )

    return _compose


@pytest.fixture
def run_nnexp(compose_cfg, tmp_path):
    """run_nnexp(*overrides) -> metrics.json of the finished run, as a dict (output silenced)."""
    from nnexp.runner import run

    def _run(*overrides: str, fast: bool = True):
        cfg = compose_cfg(*overrides, fast=fast)
        with contextlib.redirect_stdout(io.StringIO()):
            objective = run(cfg)
        metrics = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
        metrics["objective"] = objective
        metrics["run_dir"] = cfg.paths.output_dir
        return metrics

    return _run


@pytest.fixture
def csv_file(tmp_path):
    """A small CSV file: two informative numeric features, a noise column, and a text label."""

    def _write(rows: int = 120, **columns) -> Path:
        import pandas as pd

        rng = np.random.default_rng(0)
        x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
        frame = pd.DataFrame({"x1": x1, "x2": x2, "noise": rng.normal(size=rows)})
        frame["label"] = np.where(x1 + x2 > 0, "yes", "no")
        for name, values in columns.items():
            frame[name] = values
        path = tmp_path / "my.csv"
        frame.to_csv(path, index=False)
        return path

    return _write
