"""The first screen: a default run's output fits 40 lines and ends with the scores; the config
tree only with print_config=true; the run dir always keeps the whole config."""

from __future__ import annotations

import io
from pathlib import Path

from omegaconf import OmegaConf
from rich.console import Console


def screen(compose_cfg, *overrides: str) -> tuple[list[str], Path]:
    from nnexp.runner import run

    cfg = compose_cfg("quiet=false", "trainer.max_epochs=5", *overrides, fast=False)
    stream = io.StringIO()
    run(cfg, console=Console(file=stream, width=80, highlight=False))
    return stream.getvalue().splitlines(), Path(cfg.paths.output_dir)


def test_the_default_run_fits_40_lines_and_ends_with_the_scores(compose_cfg):
    lines, run_dir = screen(compose_cfg)
    assert len(lines) <= 40
    tail = "\n".join(lines[-10:])
    assert "results (breast_cancer)" in tail and "│ test" in tail and lines[-1].startswith("ok: ")
    notes = [index for index, line in enumerate(lines) if line.startswith("note: ")]  # 5 epochs: one note
    table = next(index for index, line in enumerate(lines) if line.startswith("results ("))
    assert notes and max(notes) < table  # what to act on comes before the scores, which end the output
    assert not any(line.startswith("config") for line in lines)
    saved = OmegaConf.load(run_dir / "config.yaml")
    assert {"data", "model", "optim", "schedule", "regularization", "stopping", "trainer"} <= set(saved)


def test_print_config_shows_the_tree_first(compose_cfg):
    lines, _ = screen(compose_cfg, "print_config=true")
    assert lines[0] == "config" and any("optim" in line for line in lines[:40])


def test_one_epoch_is_counted_in_the_singular(compose_cfg):
    from nnexp.runner import run

    cfg = compose_cfg("quiet=false", "trainer.max_epochs=1", fast=False)
    stream = io.StringIO()
    run(cfg, console=Console(file=stream, width=120, highlight=False))
    assert stream.getvalue().splitlines()[-1].startswith("ok: max_epochs after 1 epoch, fit ")
