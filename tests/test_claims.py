"""Claims: two writers of one dir, as real concurrent processes. The first holds its dir inside its
first job's training until the test lets it go (a line on its stdin); nothing waits on time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FAST, SWEEP_FAST

# The first writer: nnexp's CLI, whose first job says "training" and waits for a line on stdin.
HELD = """
import sys
from nnexp import cli
from nnexp.job import Job

train = Job._train

def held(job, result):
    if not getattr(Job, "released", False):
        print("training", job.dir, flush=True)
        sys.stdin.readline()
        Job.released = True
    return train(job, result)

Job._train = held
sys.argv = ["nnexp", *sys.argv[1:]]
cli.main()
"""


def start_held(cwd: Path, *argv: str) -> subprocess.Popen:
    """Start the first writer and return once its first job is training (it said so)."""
    process = subprocess.Popen([sys.executable, "-c", HELD, *argv], cwd=cwd, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:
        if line.startswith("training"):
            return process
    raise AssertionError(f"the first writer ended before training: {process.communicate()[1][-2000:]}")


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate("go\n")
    return process.returncode, out, err


def in_process(monkeypatch, cwd: Path, *argv: str) -> tuple[int, str]:
    """The second writer: nnexp's CLI in this process; its exit code and stderr."""
    import contextlib
    import io

    from hydra.core.global_hydra import GlobalHydra

    from nnexp import cli

    GlobalHydra.instance().clear()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["nnexp", *argv])
    err = io.StringIO()
    code = 0
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            cli.main()
        except SystemExit as exit:
            code = exit.code or 0
    return code, err.getvalue()


def records(sweep: Path) -> dict[str, dict]:
    return {path.parent.name: json.loads(path.read_text()) for path in sweep.glob("[0-9]*/metrics.json")}


def overrides(sweep: Path, job: str) -> list[str]:
    import yaml

    return yaml.safe_load((sweep / job / ".hydra" / "overrides.yaml").read_text())


def test_a_second_sweep_into_a_busy_sweep_dir_is_refused_in_one_line(tmp_path, monkeypatch):
    first = start_held(tmp_path, "-m", "hydra.sweep.dir=S", "paths.store_dir=store", *SWEEP_FAST, "trainer.max_epochs=2",
                       "data=iris", "seed=0,1")
    try:
        code, err = in_process(monkeypatch, tmp_path, "-m", "hydra.sweep.dir=S", "paths.store_dir=store2", *SWEEP_FAST,
                               "trainer.max_epochs=2", "data=iris", "optim.lr=0.01,0.1")
    finally:
        code_first, _, err_first = finish(first)
    assert code == 2 and err.count("\n") == 1, err
    assert "S is in use by nnexp sweep (pid" in err and "give another hydra.sweep.dir" in err
    assert code_first == 0, err_first[-2000:]
    jobs = records(tmp_path / "S")
    assert sorted(jobs) == ["0", "1"] and all(job["status"] == "ok" for job in jobs.values())
    assert [overrides(tmp_path / "S", job)[-1] for job in ("0", "1")] == ["seed=0", "seed=1"]
    assert [jobs[job]["seed"] for job in ("0", "1")] == [0, 1]  # each dir holds its own job's result
    assert not (tmp_path / "store2").exists()  # the refused sweep wrote nothing anywhere


def test_a_run_dir_in_use_or_finished_is_kept_and_the_second_run_writes_beside_it(tmp_path, monkeypatch):
    first = start_held(tmp_path, "hydra.run.dir=R", *FAST, "data=iris", "seed=1")
    try:
        code, err = in_process(monkeypatch, tmp_path, "hydra.run.dir=R", *FAST, "data=iris", "seed=2")
    finally:
        code_first, _, err_first = finish(first)
    assert code == 0 and "R holds another run, which is kept; this run writes into" in err, err
    assert code_first == 0, err_first[-2000:]
    code, err = in_process(monkeypatch, tmp_path, "hydra.run.dir=R", *FAST, "data=iris", "seed=3")  # R is finished now
    assert code == 0
    seeds = {name: json.loads((tmp_path / name / "metrics.json").read_text())["seed"] for name in ("R", "R-2", "R-3")}
    assert seeds == {"R": 1, "R-2": 2, "R-3": 3}
    assert "seed=1" in (tmp_path / "R" / ".hydra" / "overrides.yaml").read_text()  # Hydra's files are the first run's too


def test_two_resumes_at_once_train_each_job_once_and_record_no_failure(tmp_path, monkeypatch):
    code, _ = in_process(monkeypatch, tmp_path, "-m", "hydra.sweep.dir=S", "paths.store_dir=store", *SWEEP_FAST,
                         "trainer.max_epochs=2", "data=iris", "seed=0,1")
    assert code == 0
    for job in ("0", "1"):  # both jobs left unfinished, as a killed sweep leaves them
        (tmp_path / "S" / job / "metrics.json").unlink()
    import shutil

    shutil.rmtree(tmp_path / "store")
    first = start_held(tmp_path, "resume=S")
    try:
        code, err = in_process(monkeypatch, tmp_path, "resume=S")
    finally:
        code_first, out_first, err_first = finish(first)
    assert code == 2 and "S is in use by nnexp sweep" in err and "Traceback" not in err, err
    assert code_first == 0, err_first[-2000:]
    jobs = records(tmp_path / "S")
    assert sorted(jobs) == ["0", "1"] and [job["status"] for job in jobs.values()] == ["ok", "ok"]
    assert out_first.count("-> objective") == 2 and "skipped" not in out_first  # trained once, each


def test_a_dead_holders_claim_is_free_again(tmp_path):
    from nnexp.claims import claim, holder

    process = subprocess.Popen([sys.executable, "-c", "import sys; from nnexp.claims import Claim; "
                                f"c = Claim({str(tmp_path / 'D')!r}, 'holder', 'fix'); print('held', flush=True); sys.stdin.readline()"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "held\n"
    from nnexp.claims import DirBusy

    with pytest.raises(DirBusy, match=f"in use by holder \\(pid {process.pid} on"):
        with claim(tmp_path / "D", "second", "fix"):
            pass
    process.kill()  # no clean-up of its own: the kernel releases its lock
    process.wait()
    with claim(tmp_path / "D", "second", "fix"):
        assert holder(tmp_path / "D")["what"] == "second"
