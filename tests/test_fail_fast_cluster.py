"""``fail_fast=true`` on the cluster launchers: a failed job in one task cancels the sweep's other
tasks (submitit's local processes here; SLURM's arrays go through the same driver code)."""

from __future__ import annotations

import csv

import pytest

pytest.importorskip("submitit")

pytestmark = [pytest.mark.server, pytest.mark.hydra]  # local tasks: processes that import torch, as the cluster tests


def test_a_failed_job_cancels_the_sweeps_other_tasks_and_the_summary_says_so(sweep, tmp_path, capsys):
    # Job 0 fails in its task (a negative learning rate, refused where the job runs); job 1, in a
    # task of its own, would train until cancelled: only fail_fast's cancel can end this sweep.
    with pytest.raises(SystemExit) as exit_:
        sweep("stopped", "data=iris", "stopping=none", "trainer.max_epochs=100000000", "fail_fast=true", "optim.lr=-1,0.01",
              "launcher=submitit_local", "hydra.launcher.jobs_per_task=1", "hydra.launcher.poll_s=0.1")
    assert exit_.value.code == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and "fail_fast=true: the sweep stopped at job 0, which failed (" in errors[0], errors
    assert "fail_fast cancelled the sweep's other local tasks: job 1 is recorded cancelled" in errors[0]
    rows = {row["param_optim.lr"]: row for row in csv.DictReader((tmp_path / "stopped" / "summary.csv").open())}
    assert "failed" in rows["-1"]["status"] and "optim.lr" in rows["-1"]["error"]
    assert rows["0.01"]["status"] == "1 cancelled"
    assert rows["0.01"]["error"].startswith("cancelled by fail_fast=true (job 0 failed); its local task")
