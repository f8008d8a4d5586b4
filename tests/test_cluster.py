"""Packed cluster tasks: submitit's local processes, and a real one-node SLURM cluster."""

from __future__ import annotations

import csv
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from streams import Stream, followed, wait_for

pytest.importorskip("submitit")

pytestmark = [pytest.mark.server, pytest.mark.hydra]
GRID = ["data=iris", "cv=2", "trainer.max_epochs=20", "quiet=true", "logger=none", "regularization.alpha=1e-3,1e-2,1e-1,1",
        "hydra/job_logging=none", "hydra.callbacks.sweep_summary.figures=foreground"]


def nnexp(cwd: Path, *overrides: str, env=None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nnexp.cli", "-m", *overrides], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)


def finished(cwd: Path, *overrides: str, env=None) -> str:
    process = nnexp(cwd, *overrides, env=env)
    out = process.communicate()[0]
    assert process.returncode == 0, out
    return out


def scores(sweep: Path) -> dict[str, tuple[str, str]]:
    """alpha -> (mean CV score, mean train score) from summary.csv."""
    return {row["param_regularization.alpha"]: (row["mean_val_score"], row["mean_train_score"])
            for row in csv.DictReader((sweep / "summary.csv").open())}


def test_local_tasks_pack_the_jobs_and_score_as_in_process(tmp_path):
    finished(tmp_path, *GRID, "hydra.sweep.dir=in_process", "paths.store_dir=store_in_process")
    out = finished(tmp_path, *GRID, "launcher=submitit_local", "hydra.launcher.max_tasks=2", "hydra.sweep.dir=local")
    assert "Submitted 2 local tasks for 4 jobs" in out
    assert scores(tmp_path / "local") == scores(tmp_path / "in_process")
    assert not (tmp_path / "local" / ".submitit" / "%j").exists()
    # Every job is in the store now: a relaunch submits nothing.
    again = finished(tmp_path, f"resume={tmp_path / 'local'}")
    assert "4 of 4 jobs finished earlier" in again and "Submitted" not in again
    assert "refit ran as" not in again  # its refit is finished too: no task for it either


@pytest.mark.xdist_group("slurm")
def test_slurm_tasks_score_as_in_process_and_a_relaunch_submits_nothing(tmp_path, slurm_cluster):
    finished(tmp_path, *GRID, "hydra.sweep.dir=in_process", "paths.store_dir=store_in_process")
    out = finished(tmp_path, *GRID, "launcher=slurm", "hydra.launcher.jobs_per_task=2", "hydra.sweep.dir=cluster", "refit=true",
                   env=slurm_cluster)
    assert "Submitted 2 slurm tasks for 4 jobs" in out
    assert scores(tmp_path / "cluster") == scores(tmp_path / "in_process")
    # The refit ran as one more task of the cluster, and reported its test score here.
    assert "refit ran as slurm task" in out and "refit on the whole training split: test accuracy" in out
    assert json.loads((tmp_path / "cluster" / "refit" / "metrics.json").read_text())["status"] == "ok"
    again = finished(tmp_path, f"resume={tmp_path / 'cluster'}", env=slurm_cluster)
    assert "4 of 4 jobs finished earlier" in again and "Submitted" not in again
    assert "refit ran as" not in again  # its refit is finished too: no task for it either


@pytest.mark.xdist_group("slurm")
def test_a_request_no_node_can_satisfy_is_one_line(tmp_path, slurm_cluster):
    process = nnexp(tmp_path, *GRID, "launcher=slurm", "hydra.launcher.cpus_per_task=512", env=slurm_cluster)
    out = process.communicate()[0]
    lines = [line for line in out.splitlines() if line.startswith("error")]
    assert process.returncode == 2 and len(lines) == 1, out
    assert "hydra.launcher.cpus_per_task=512" in lines[0] and "largest node" in lines[0]


def squeue(env) -> list[str]:
    return subprocess.run(["squeue", "-h", "-o", "%i %T"], env=env, capture_output=True, text=True).stdout.splitlines()


def array_id(driver_output: str) -> str | None:
    """The array a cluster launch submitted, from its log line."""
    found = re.search(r"Submitted \d+ slurm tasks for \d+ jobs \(array (\d+)\)", driver_output)
    return found.group(1) if found else None


def task_log(sweep: Path, array: str, stream: str, tasks: int) -> Path:
    """Task 0's stdout ("out") or stderr ("err") file, where submitit writes it (a submission of
    one task is a plain job, not an array)."""
    task = array if tasks == 1 else f"{array}_0"
    return sweep / ".submitit" / task / f"{task}_0_log.{stream}"


def ended(job: str, env) -> None:
    """Block until SLURM has ended every task of ``job``: a job that depends on it (afterany) runs,
    and ``sbatch --wait`` returns, only then."""
    subprocess.run(["sbatch", "--wait", f"--dependency=afterany:{job}", "-o", "/dev/null", "--wrap", "true"],
                   env=env, capture_output=True)


@pytest.mark.xdist_group("slurm")
def test_a_killed_task_keeps_its_finished_jobs_and_a_relaunch_trains_only_the_rest(tmp_path, slurm_cluster):
    slow = ["data=digits", "trainer.max_epochs=2000", "stopping=none", "quiet=true", "logger=none", "hydra/job_logging=none",
            "regularization.alpha=1e-4,1e-3,1e-2", "model.hidden_sizes=[64]", "hydra.callbacks.sweep_summary.figures=foreground"]
    # One task of three jobs; chunk_size=1 trains them one after another, each recorded as it finishes.
    driver = nnexp(tmp_path, *slow, "launcher=slurm", "hydra.launcher.jobs_per_task=3", "hydra.launcher.chunk_size=1",
                   "hydra.sweep.dir=killed", env=slurm_cluster)
    output = Stream(driver.stdout)
    wait_for(lambda: array_id(output.text), output)  # the driver says which array it submitted
    array = array_id(output.text)
    with followed(task_log(tmp_path / "killed", array, "out", tasks=1)) as log:  # the task reports each job it finishes
        wait_for(lambda: re.search(r"job \d+: .* -> objective", log.text), log, output)
    # Killed as the kernel kills a process out of memory: SIGKILL, no chance to clean up.
    subprocess.run(["scancel", "--signal=KILL", array], env=slurm_cluster)
    out = driver.communicate()[0]
    assert driver.returncode == 0, out
    statuses = {job: json.loads((tmp_path / "killed" / job / "metrics.json").read_text())["status"] for job in ("0", "1", "2")}
    cancelled = [job for job, status in statuses.items() if status in ("lost", "cancelled")]  # SIGKILL: lost with its task
    assert statuses["0"] == "ok" and cancelled, statuses  # the finished job is kept, the others say why they are not
    assert (tmp_path / "killed" / "summary.csv").is_file()
    error = json.loads((tmp_path / "killed" / cancelled[0] / "metrics.json").read_text())["error"]
    assert "slurm task" in error and "before this job finished" in error
    again = finished(tmp_path, f"resume={tmp_path / 'killed'}", env=slurm_cluster)
    kept = 3 - len(cancelled)
    assert f"{kept} of 3 jobs finished earlier" in again and f"for {len(cancelled)} jobs" in again
    assert all(json.loads((tmp_path / "killed" / job / "metrics.json").read_text())["status"] == "ok" for job in statuses)


@pytest.mark.xdist_group("slurm")
def test_a_sigtermed_driver_cancels_its_array(tmp_path, slurm_cluster):
    long = ["data=digits", "trainer.max_epochs=100000", "stopping=none", "quiet=true", "logger=none", "hydra/job_logging=none",
            "regularization.alpha=1e-4,1e-3"]
    driver = nnexp(tmp_path, *long, "launcher=slurm", "hydra.sweep.dir=term", env=slurm_cluster)
    output = Stream(driver.stdout)
    wait_for(lambda: array_id(output.text), output)
    array = array_id(output.text)
    # submitit's first line says the task runs (on its error stream, or on its output when the
    # task's logging set-up has taken over the handlers)
    term = tmp_path / "term"
    with followed(task_log(term, array, "out", tasks=2)) as out, followed(task_log(term, array, "err", tasks=2)) as err:
        wait_for(lambda: "Starting with JobEnvironment" in out.text + err.text, out, err, output)
    driver.send_signal(signal.SIGTERM)
    out = output.text + driver.communicate()[0]
    assert driver.returncode == 130 and "cancelled array" in out, out
    ended(array, slurm_cluster)
    assert not [line for line in squeue(slurm_cluster) if line.startswith(f"{array}_")]


def test_a_sigtermed_driver_ends_its_local_tasks(tmp_path):
    import psutil

    long = ["data=digits", "trainer.max_epochs=100000", "stopping=none", "quiet=true", "logger=none", "hydra/job_logging=none",
            "regularization.alpha=1e-4,1e-3"]
    driver = nnexp(tmp_path, *long, "launcher=submitit_local", "hydra.launcher.jobs_per_task=1", "hydra.sweep.dir=term")
    output = Stream(driver.stdout)
    wait_for(lambda: re.search(r"array (\d+), (\d+)\)", output.text), output)
    shells = [int(pid) for pid in re.search(r"array (\d+), (\d+)\)", output.text).groups()]  # a local task's id is its shell's pid
    term = tmp_path / "term" / ".submitit"
    for shell in shells:  # submitit's first line says the task runs
        with followed(term / str(shell) / f"{shell}_0_log.err") as err, followed(term / str(shell) / f"{shell}_0_log.out") as out:
            wait_for(lambda: "Starting with JobEnvironment" in out.text + err.text, out, err, output)
    processes = [process for shell in shells for process in [psutil.Process(shell), *psutil.Process(shell).children(recursive=True)]]
    driver.send_signal(signal.SIGTERM)
    out = output.text + driver.communicate()[0]
    assert driver.returncode == 130 and "cancelled local tasks" in out, out
    def alive(process) -> bool:
        try:
            return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:  # reaped meanwhile
            return False

    assert not [process for process in processes if alive(process)]


@pytest.mark.xdist_group("slurm")
def test_a_task_pending_on_a_busy_cluster_ends_the_sweep_in_one_line_with_its_summary(tmp_path, slurm_cluster):
    import os

    # Job 0 finished earlier (in the store); job 1's task will wait behind another user's job.
    finished(tmp_path, *GRID[:-3], "regularization.alpha=1e-3", *GRID[-2:], "hydra.sweep.dir=earlier")
    cores = str(os.cpu_count())
    blocker = subprocess.run(["sbatch", "--parsable", "-c", cores, "--wrap", "sleep 600", "-o", "/dev/null"],
                             env=slurm_cluster, capture_output=True, text=True, check=True).stdout.strip()
    try:  # every core is taken: the sweep's task pends (Resources), which no setting of the sweep's can change
        process = nnexp(tmp_path, *GRID[:-3], "regularization.alpha=1e-3,1e-2", *GRID[-2:], "launcher=slurm",
                        "hydra.launcher.pending_timeout_s=1", "hydra.launcher.poll_s=0.2", "hydra.sweep.dir=busy", env=slurm_cluster)
        out = process.communicate()[0]
        errors = [line for line in out.splitlines() if line.startswith("error")]
        assert process.returncode == 1 and len(errors) == 1, out
        assert "the cluster is busy" in errors[0] and "still PENDING (Resources)" in errors[0], errors
        assert "cpus_per_task" not in errors[0] and "hydra.launcher.pending_timeout_s" in errors[0]
        assert [line for line in squeue(slurm_cluster) if not line.startswith(blocker)] == []  # its array was cancelled
    finally:
        subprocess.run(["scancel", blocker], env=slurm_cluster)
        ended(blocker, slurm_cluster)
    rows = {row["param_regularization.alpha"]: row for row in csv.DictReader((tmp_path / "busy" / "summary.csv").open())}
    assert rows["0.001"]["status"] == "ok"  # the finished job is kept, and in the summary
    assert rows["0.01"]["status"] == "1 cancelled" and "still PENDING (Resources)" in rows["0.01"]["error"], rows


@pytest.mark.xdist_group("slurm")
def test_a_scancelled_array_records_its_jobs_as_cancelled_and_the_summary_shows_why(tmp_path, slurm_cluster):
    long = ["data=digits", "trainer.max_epochs=1000000", "stopping=none", "quiet=true", "logger=none", "hydra/job_logging=none",
            "regularization.alpha=1e-4,1e-3", "hydra.callbacks.sweep_summary.figures=foreground"]
    driver = nnexp(tmp_path, *long, "launcher=slurm", "hydra.launcher.jobs_per_task=1", "hydra.sweep.dir=cancelled",
                   env=slurm_cluster)
    output = Stream(driver.stdout)
    wait_for(lambda: array_id(output.text), output)
    array = array_id(output.text)
    wait_for(lambda: "tasks: 0 pending, 2 running" in output.text, output)  # the driver's progress line, from squeue
    subprocess.run(["scancel", array], env=slurm_cluster, check=True)
    out = output.text + driver.communicate()[0]
    assert driver.returncode == 0, out
    records = [json.loads((tmp_path / "cancelled" / job / "metrics.json").read_text()) for job in ("0", "1")]
    assert [record["status"] for record in records] == ["cancelled", "cancelled"], out
    assert all("ended CANCELLED before this job finished" in record["error"] for record in records)
    rows = list(csv.DictReader((tmp_path / "cancelled" / "summary.csv").open()))
    assert [row["status"] for row in rows] == ["1 cancelled"] * 2 and all("CANCELLED" in row["error"] for row in rows), rows


@pytest.mark.xdist_group("slurm")
def test_tasks_queued_behind_the_sweeps_own_tasks_are_waited_for(tmp_path, slurm_cluster):
    import os

    jobs = 2 * (os.cpu_count() or 1)  # one task a job: half of them wait for the other half's cores
    grid = [*GRID[:-3], f"regularization.alpha=range(1,{jobs + 1})", *GRID[-2:]]
    out = finished(tmp_path, *grid, "launcher=slurm", "hydra.launcher.jobs_per_task=1", "hydra.launcher.pending_timeout_s=1",
                   "hydra.launcher.poll_s=0.2", "hydra.sweep.dir=queued", env=slurm_cluster)
    statuses = [json.loads(path.read_text())["status"] for path in (tmp_path / "queued").glob("*/metrics.json")]
    assert statuses == ["ok"] * jobs, out
    assert (tmp_path / "queued" / "summary.csv").is_file()


@pytest.mark.xdist_group("slurm")
def test_a_task_out_of_time_records_its_jobs_as_timeout_and_the_sweep_ends_with_its_summary(tmp_path, slurm_cluster):
    long = ["data=digits", "trainer.max_epochs=1000000", "stopping=none", "quiet=true", "logger=none", "hydra/job_logging=none",
            "regularization.alpha=1e-4,1e-3", "hydra.callbacks.sweep_summary.figures=foreground", "refit=true"]
    out = finished(tmp_path, *long, "launcher=slurm", "hydra.launcher.timeout_min=1", "hydra.launcher.jobs_per_task=2",
                   "hydra.sweep.dir=late", env=slurm_cluster)
    records = [json.loads((tmp_path / "late" / job / "metrics.json").read_text()) for job in ("0", "1")]
    assert [record["status"] for record in records] == ["timeout", "timeout"], out
    assert "ended TIMEOUT before this job finished" in records[0]["error"]
    # SLURM may send the warning up to 60 s early, here as the task starts: it must not kill the
    # task (FAILED, its jobs lost). Caught by submitit's handler, or ignored while Python starts
    # (then the task runs to its limit, where submitit bypasses SLURM's SIGTERM).
    logs = "".join(path.read_text() for path in (tmp_path / "late" / ".submitit").rglob("*_log.err"))
    assert "User defined signal 2" not in logs and ("Caught signal SIGUSR2" in logs or "Bypassing signal SIGTERM" in logs), logs
    assert "--signal=USR2@30" in "".join(path.read_text() for path in (tmp_path / "late" / ".submitit").rglob("*_submission.sh"))
    assert (tmp_path / "late" / "summary.csv").is_file() and "Traceback" not in out
    rows = list(csv.DictReader((tmp_path / "late" / "summary.csv").open()))
    assert all("timeout" in row["status"] for row in rows) and all("TIMEOUT" in row["error"] for row in rows), rows
