"""A job's log file (Hydra's ``<job dir>/<job name>.log``) holds what the job said, and a run
refused at its checks leaves no run dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FAST

pytestmark = pytest.mark.hydra

TINY = ["data=iris", *FAST]


def log_file(job_dir: Path) -> Path:
    """The job's log file, as Hydra names it (``<job name>.log``: app.log for the command)."""
    (path,) = job_dir.glob("*.log")
    return path


def log_lines(job_dir: Path) -> list[str]:
    """The job's own lines in its log file, without the record prefix."""
    return [line.split(" - ", 1)[1] for line in log_file(job_dir).read_text().splitlines() if "[nnexp.job]" in line]


def test_a_runs_log_file_holds_its_results_as_the_console_shows_them(nnexp, tmp_path):
    code, out, _ = nnexp(*TINY, "quiet=false", "hydra.run.dir=run")
    assert code == 0
    lines = log_lines(tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert lines[0] == f"run dir: {tmp_path / 'run'}"
    assert f"test: loss {metrics['test_loss']:.4f}, accuracy {metrics['test_score']:.4f}" in lines
    assert lines[-1].startswith("ok: max_epochs after 3 epochs") and lines[-1] in out  # the console's last line
    assert any(line.startswith("note: stopped at trainer.max_epochs=3") for line in lines)


@pytest.mark.parametrize("launcher", ["nnexp", "basic", "batched"])
def test_each_sweep_jobs_log_file_holds_its_own_result(nnexp, tmp_path, launcher):
    options = {"nnexp": [], "basic": ["hydra/launcher=basic"], "batched": ["launcher=batched"]}[launcher]
    code, out, _ = nnexp("-m", "hydra.sweep.dir=sweep", *TINY, "optim=lbfgs", "seed=0,1", *options)
    assert code == 0, out
    for job in ("0", "1"):
        lines = log_lines(tmp_path / "sweep" / job)
        objective = json.loads((tmp_path / "sweep" / job / "metrics.json").read_text())["objective"]
        assert f"objective {objective:.4f}" in lines and any(line.startswith("ok: ") for line in lines)
        assert f"run dir: {tmp_path / 'sweep' / job}" in lines  # its own dir, not the other job's
    before = log_file(tmp_path / "sweep" / "0").read_text()
    code, out, _ = nnexp("-m", "hydra.sweep.dir=sweep", *TINY, "optim=lbfgs", "seed=0,1", *options)  # relaunched
    assert "skipped, finished earlier: ok, objective" in out
    assert log_file(tmp_path / "sweep" / "0").read_text() == before  # a finished job's files are kept as they are


def test_a_failed_jobs_log_says_why_and_no_log_setting_writes_nothing(nnexp, tmp_path, monkeypatch):
    from nnexp import runner

    def fails(plan, console):
        raise RuntimeError("the fit broke")

    monkeypatch.setattr(runner, "produce", fails)
    code, _, _ = nnexp("-m", "hydra.sweep.dir=sweep", *TINY)
    assert log_lines(tmp_path / "sweep" / "0") == ["failed: RuntimeError: the fit broke"]
    assert "[ERROR]" in log_file(tmp_path / "sweep" / "0").read_text()
    code, _, _ = nnexp("-m", "hydra.sweep.dir=quiet", *TINY, "hydra/job_logging=disabled")
    assert (tmp_path / "quiet" / "0" / "metrics.json").is_file() and not list((tmp_path / "quiet" / "0").glob("*.log"))


def test_a_run_refused_at_its_checks_leaves_no_run_dir(nnexp, tmp_path):
    code, out, err = nnexp("optim.lr=-1")
    assert code == 2 and err.strip() == "error: optim.lr=-1 is not allowed: a learning rate > 0, e.g. 0.001"
    assert not (tmp_path / "outputs").exists()  # nor the date folders Hydra made for it
    (tmp_path / "two.csv").write_text("a,y\n1,0\n2,1\n")
    code, _, err = nnexp("data=csv", "data.path=two.csv", "data.target=y")  # refused as the data is split
    assert code == 2 and "2 rows cannot be split" in err and not (tmp_path / "outputs").exists()
    code, _, err = nnexp(*TINY, "+trainer.gradient_clip_val=1")  # refused as the fit starts, after its config is written
    assert code == 2 and err.startswith("error: trainer.gradient_clip_val=1 is not allowed") and not (tmp_path / "outputs").exists()
    (tmp_path / "runs").mkdir()
    code, _, _ = nnexp("optim.lr=-1", "hydra.run.dir=runs/one")  # the folders above a run dir the user chose are theirs
    assert code == 2 and (tmp_path / "runs").is_dir() and not (tmp_path / "runs" / "one").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("kept")
    code, _, _ = nnexp("optim.lr=-1", "hydra.run.dir=mine")  # a dir with the user's own files is kept whole
    assert code == 2 and (tmp_path / "mine" / "notes.txt").read_text() == "kept" and (tmp_path / "mine" / ".hydra").is_dir()
