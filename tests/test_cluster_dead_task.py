"""A local cluster task that dies mid-chunk: each of its jobs keeps what this launch recorded for
it (a result, or its own failure with its error), and the rest say how their task ended."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from streams import Stream, followed, wait_for

pytest.importorskip("submitit")


def test_a_jobs_own_failure_is_kept_and_an_earlier_launchs_is_forgotten(compose_cfg, tmp_path):
    from nnexp.job import Job
    from nnexp.metrics import RunRecord, read_record, write_record
    from nnexp.store import job_key

    job = Job.in_sweep(compose_cfg("data=iris"), tmp_path / "0", say=lambda text: None)
    job.dir.mkdir()
    key = job_key(job.cfg)
    write_record(job.dir / "metrics.json", RunRecord(key, "timeout", None, error="an earlier launch's task ran out of time"))
    job.forget_ended()  # the driver, before this launch submits the job
    assert not (job.dir / "metrics.json").exists()
    write_record(job.dir / "metrics.json", RunRecord(key, "oom", None, error="MemoryError: its own"))  # this launch's task
    assert job.end("lost", "slurm task 7_0 ended NODE_FAIL before this job finished").error == "MemoryError: its own"
    assert read_record(job.dir / "metrics.json").status == "oom"
    job.forget_ended()
    assert job.end("lost", "slurm task 8_0 ended NODE_FAIL before this job finished").status == "lost"


@pytest.mark.server  # local tasks: processes that import torch, as the cluster tests
@pytest.mark.hydra
def test_a_dead_task_keeps_its_jobs_own_failure_and_records_the_rest(tmp_path):
    from nnexp.hydra_integration.cluster_tasks import end_local_tasks

    sweep = tmp_path / "dead"
    # One task, two ordinary jobs in turn (a step schedule is not stacked): job 0 fails (a negative
    # learning rate, refused where the job runs), job 1 trains until its task is killed.
    driver = subprocess.Popen(
        [sys.executable, "-m", "nnexp.cli", "-m", "data=iris", "stopping=none", "trainer.max_epochs=100000000", "schedule=step",
         "optim.lr=-1,0.01", "quiet=true", "logger=none", "hydra/job_logging=none", "launcher=submitit_local",
         "hydra.launcher.jobs_per_task=2", "hydra.launcher.poll_s=0.1", "hydra.callbacks.sweep_summary.figures=foreground",
         f"hydra.sweep.dir={sweep}"], cwd=tmp_path, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = Stream(driver.stdout)
    wait_for(lambda: re.search(r"Submitted 1 local tasks for 2 jobs \(array (\d+)\)", output.text), output)
    task = re.search(r"\(array (\d+)\)", output.text).group(1)
    with followed(sweep / ".submitit" / task / f"{task}_0_log.out") as log:  # the task reports each job as it ends
        wait_for(lambda: re.search(r"job 0: .* -> failed: ", log.text), log, output)
    end_local_tasks([int(task)])  # as the kernel kills a task out of memory: SIGKILL
    out = output.text + driver.communicate()[0]
    assert driver.returncode == 0, out
    records = [json.loads((sweep / job / "metrics.json").read_text()) for job in ("0", "1")]
    assert records[0]["status"] == "failed" and "optim.lr" in records[0]["error"], records  # its own failure, kept
    assert records[1]["status"] in ("cancelled", "lost") and "before this job finished" in records[1]["error"], records
    assert (sweep / "summary.csv").is_file()
