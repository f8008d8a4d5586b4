"""Provenance: every run and sweep records versions, host, device and the git commit; --version shows them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nnexp import provenance

LIBRARIES = {"nnexp", "python", "torch", "lightning", "hydra", "omegaconf", "scikit-learn", "numpy"}


@pytest.fixture
def fresh_git_answers():
    provenance.git_state.cache_clear()
    yield
    provenance.git_state.cache_clear()


def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=folder, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_a_run_in_a_git_repository_records_versions_device_and_the_commit(run_nnexp, tmp_path, monkeypatch, fresh_git_answers):
    git(tmp_path, "init", "-q")
    (tmp_path / "notes.txt").write_text("a\n")
    git(tmp_path, "add", "notes.txt")
    git(tmp_path, "commit", "-qm", "first")
    monkeypatch.chdir(tmp_path)
    record = json.loads((Path(run_nnexp("data=iris")["run_dir"]) / "provenance.json").read_text())
    assert set(record["versions"]) == LIBRARIES and record["versions"]["torch"].split("+")[0] in sys.modules["torch"].__version__
    assert record["device"].startswith("cpu: ") and record["host"]["name"]
    assert record["git"] == {"commit": git(tmp_path, "rev-parse", "HEAD"), "dirty": False}
    (tmp_path / "notes.txt").write_text("b\n")
    provenance.git_state.cache_clear()
    assert provenance.provenance()["git"]["dirty"] is True


def test_no_git_never_fails_a_run(run_nnexp, tmp_path, monkeypatch, fresh_git_answers):
    monkeypatch.chdir(tmp_path)  # not a repository
    record = json.loads((Path(run_nnexp("data=iris")["run_dir"]) / "provenance.json").read_text())
    assert "git" not in record
    monkeypatch.setenv("PATH", str(tmp_path))  # no git program at all
    provenance.git_state.cache_clear()
    assert "git" not in provenance.provenance() and provenance.git_state(str(tmp_path)) is None


def test_a_sweep_records_it_at_its_root_in_its_report_and_in_restored_jobs(sweep, tmp_path):
    sweep("first", "data=iris", "trainer.max_epochs=2", "seed=0,1")
    root = json.loads((tmp_path / "first" / "provenance.json").read_text())
    assert set(root["versions"]) == LIBRARIES
    report = (tmp_path / "first" / "report.html").read_text()
    assert 'id="provenance"' in report and root["versions"]["torch"] in report
    sweep("second", "data=iris", "trainer.max_epochs=2", "seed=0,1", "paths.store_dir=first_store")
    assert (tmp_path / "second" / "0" / ".reused").is_file()
    assert json.loads((tmp_path / "second" / "0" / "provenance.json").read_text())["versions"] == root["versions"]


def test_version_prints_versions_host_device_git_and_compat_paths(monkeypatch, capsys):
    from nnexp import command

    monkeypatch.setattr(sys, "argv", ["nnexp", "--version"])
    command.run()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("nnexp ") and "torch" in lines[1] and "omegaconf" in lines[1]
    assert [line.split(":")[0].strip() for line in lines[2:]] == ["host", "device", "git", "compat"]
