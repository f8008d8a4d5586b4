"""How a SLURM task's end and a pending task's reason are read (no cluster needed): the status
its jobs are recorded with, and whose setting a pending task's one line blames."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from nnexp.hydra_integration.cluster_wait import TaskWait
from nnexp.hydra_integration.slurm import ended_state, hopeless_key, job_status


@pytest.mark.parametrize("state, status", [
    ("TIMEOUT", "timeout"), ("DEADLINE", "timeout"), ("CANCELLED", "cancelled"),
    ("NODE_FAIL", "lost"), ("BOOT_FAIL", "lost"), ("OUT_OF_MEMORY", "lost"), ("PREEMPTED", "lost"), ("FAILED", "lost"),
])
def test_a_dead_tasks_jobs_are_timeout_cancelled_or_lost_with_it(state, status):
    assert job_status(state) == status


def test_without_accounting_the_task_log_says_how_it_ended(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sacct or scontrol here: the log is all there is
    log = tmp_path / "12_0_log.err"
    log.write_text("slurmstepd: error: Detected 1 oom-kill event(s) in StepId=12.0. Some of your processes may have been killed\n")
    assert job_status(ended_state("12_0", log)) == "lost"
    log.write_text("slurmstepd: error: *** JOB 12 ON n1 CANCELLED AT 2026-12-06T23:00:00 DUE TO TIME LIMIT ***\n")
    assert job_status(ended_state("12_0", log)) == "timeout"
    assert job_status(ended_state("12_1", tmp_path / "missing.err")) == "lost"  # vanished without a word


def pending_line(reason: str):
    launcher = SimpleNamespace(cluster="slurm", pending_timeout_s=300, cpus_per_task=4, timeout_min=600, partition="short")
    halt = TaskWait(launcher).pending_halt("12_3", reason, 301, ["12"])
    return halt, halt.stop(Path("S"), [3])


@pytest.mark.parametrize("reason", ["Resources", "Priority", "QOSMaxJobsPerUserLimit"])
def test_a_task_pending_on_a_busy_cluster_blames_no_setting(reason):
    halt, stop = pending_line(reason)
    assert hopeless_key(reason) is None and stop.exit_code == 1
    assert f"the cluster is busy: task 12_3 was still PENDING ({reason}) after 301 s" in str(stop)
    assert "cpus_per_task" not in str(stop) and "hydra.launcher.pending_timeout_s" in str(stop)
    assert "\n" not in str(stop) and "nnexp resume=S" in str(stop)
    assert halt.why == f"cancelled: task 12_3 was still PENDING ({reason}) after 301 s"  # each cancelled job's error


@pytest.mark.parametrize("reason, key", [("PartitionTimeLimit", "timeout_min"), ("QOSMaxCpuPerJobLimit", "cpus_per_task"),
                                         ("ReqNodeNotAvail, UnavailableNodes:n1", "partition")])
def test_a_request_slurm_never_starts_names_the_setting_to_change(reason, key):
    _, stop = pending_line(reason)
    assert str(stop).startswith(f"hydra.launcher.{key}=") and stop.exit_code == 2
