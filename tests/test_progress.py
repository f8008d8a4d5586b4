"""A sweep's live progress (nnexp.progress) and fail_fast=true (nnexp.fail_fast)."""

from __future__ import annotations

import io
import json

import pytest
from omegaconf import OmegaConf
from rich.console import Console

from nnexp.progress import SweepProgress, planned_jobs

GRID = ["data=iris", "trainer.max_epochs=2"]


def plain_progress() -> tuple[SweepProgress, io.StringIO]:
    stream = io.StringIO()
    progress = SweepProgress()
    progress.start(4, console=Console(file=stream, width=200))
    return progress, stream


def test_plain_lines_count_jobs_failures_and_the_best_so_far():
    progress, stream = plain_progress()
    progress.job_done(0, "ok", 0.5)
    progress.job_done(1, "failed", None)
    progress.job_done(2, "ok", 0.9)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("progress: sweep: 1/4 jobs, 0:00:00 elapsed, ETA 0:00:00, 0 failed, best 0.5000 (job 0)")
    assert "2/4 jobs" in lines[1] and "1 failed" in lines[1]  # a failure is reported at once
    assert "3/4 jobs" in lines[2] and "best 0.9000 (job 2)" in lines[2]
    progress.job_done(3, "diverged", None)
    progress.on_multirun_end(None)  # the last count was printed: not again
    assert "4/4 jobs" in stream.getvalue().splitlines()[-1] and progress.live is None
    assert sum("4/4 jobs" in line for line in stream.getvalue().splitlines()) == 1


def test_a_relaunch_counts_on_from_earlier_jobs_and_its_eta_is_its_own_rate(monkeypatch):
    """An Optuna study topped up from 90 to 100 trials: 91/100 after one new trial of 10 s, so
    9 trials (90 s) are left, whatever the earlier trials took; their best stands until beaten."""
    import time

    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    stream = io.StringIO()
    progress = SweepProgress()
    progress.start(100, "trials", console=Console(file=stream, width=200))
    progress.count_earlier(90, (0.8, 41))
    clock[0] += 10
    progress.job_done(90, "ok", 0.7)
    line = stream.getvalue().splitlines()[-1]
    assert line.startswith("progress: sweep: 91/100 trials, 0:00:10 elapsed, ETA 0:01:30, 0 failed, best 0.8000 (job 41)")
    progress.job_done(91, "ok", 0.6)  # no line: the next is due at a tenth of the sweep more
    assert len(stream.getvalue().splitlines()) == 1
    progress.on_multirun_end(None)  # other workers ran the other trials: this launch's last count still prints
    assert stream.getvalue().splitlines()[-1].startswith("progress: sweep: 92/100 trials, 0:00:10 elapsed")


def test_a_resumed_sweeps_stored_jobs_count_but_give_no_rate(monkeypatch):
    """Two jobs restored from a first launch (the imports' 6 s went by meanwhile), then one trained
    in 2 s: one job is left, at this launch's own rate."""
    import time

    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    progress, stream = plain_progress()
    clock[0] += 6
    progress.job_done(0, "ok", 0.5, earlier=True)
    progress.job_done(1, "ok", 0.7, earlier=True)
    clock[0] += 2
    progress.job_done(2, "ok", 0.6)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "progress: sweep: 1/4 jobs, 0:00:06 elapsed, 0 failed, best 0.5000 (job 0)"  # no ETA from a restored job
    assert lines[-1].startswith("progress: sweep: 3/4 jobs, 0:00:08 elapsed, ETA 0:00:08, 0 failed, best 0.7000 (job 1)")


def test_cluster_tasks_are_counted_by_state():
    progress, stream = plain_progress()
    progress.tasks(pending=2, running=1, done=0)
    progress.tasks(pending=2, running=1, done=0)  # no change: no line
    progress.tasks(pending=0, running=2, done=1)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "tasks: 0 pending, 2 running, 1 done" in lines[1]


def test_a_terminal_gets_one_live_line_that_ends_with_the_sweep():
    stream = io.StringIO()
    progress = SweepProgress()
    progress.start(2, console=Console(file=stream, width=200, force_terminal=True))
    assert progress.live is not None
    progress.job_done(0, "ok", 0.5)
    progress.job_done(1, "ok", 0.7)
    progress.on_multirun_end(None)
    assert progress.live is None and "2/2 jobs" in stream.getvalue() and "progress:" not in stream.getvalue()


def test_no_count_is_printed_where_no_job_ended_in_this_process():
    """launcher=joblib: the jobs end in its workers, and this process saw none: no '0/7 jobs' line."""
    progress, stream = plain_progress()
    progress.on_multirun_end(None)
    assert stream.getvalue() == ""


def test_the_planned_count_is_the_grid_or_optunas_n_trials():
    grid = OmegaConf.create({"hydra": {"sweeper": {"_target_": "nnexp.hydra_integration.sweeper.GridSweeper", "params": {"seed": "0,1"}},
                                       "overrides": {"task": ["data=iris", "regularization.alpha=0.1,1,10"]}}})
    assert planned_jobs(grid) == 6
    optuna = OmegaConf.create({"hydra": {"sweeper": {"_target_": "nnexp.hydra_integration.optuna_sweeper.OptunaSweeper", "n_trials": 7},
                                         "overrides": {"task": []}}})
    assert planned_jobs(optuna) == 7


def test_a_sweep_prints_its_progress(sweep, capsys):
    sweep("grid", *GRID, "seed=0,1")
    out = capsys.readouterr().out
    assert "progress: sweep: 1/2 jobs" in out and "progress: sweep: 2/2 jobs" in out and "0 failed" in out


def test_fail_fast_stops_at_the_first_failed_job_keeps_what_finished_and_writes_the_summary(sweep, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        sweep("stopped", *GRID, "fail_fast=true", "optim.lr=0.1,-1,0.2")
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert "fail_fast=true: the sweep stopped at job 1, which failed (" in err and "optim.lr=-1" in err
    assert json.loads((tmp_path / "stopped" / "0" / "metrics.json").read_text())["status"] == "ok"
    assert not (tmp_path / "stopped" / "2").exists()
    summary = (tmp_path / "stopped" / "summary.csv").read_text()
    assert "missing" in summary and "failed" in summary


def test_fail_fast_stops_a_batched_sweep_before_its_stacks_train_when_a_job_is_refused(sweep, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        sweep("stacked", *GRID, "launcher=batched", "fail_fast=true", "optim.lr=0.1,-1,0.2")
    assert exit_.value.code == 1
    assert "fail_fast=true: the sweep stopped at job 1, which failed (" in capsys.readouterr().err
    assert not any((tmp_path / "stacked" / str(n) / "metrics.json").exists() for n in (0, 2))  # no stack trained
    assert "missing" in (tmp_path / "stacked" / "summary.csv").read_text()


def test_without_fail_fast_a_failed_job_does_not_stop_the_sweep(sweep):
    jobs = sweep("on", *GRID, "optim.lr=-1,0.2")
    assert [jobs[str(n)]["status"] for n in range(2)] == ["failed", "ok"]


def test_a_started_display_pickles_as_an_unstarted_one_for_cluster_tasks():
    import pickle

    progress, _ = plain_progress()
    copy = pickle.loads(pickle.dumps(progress))
    assert copy.console is None and copy.live is None and copy.plain_steps == progress.plain_steps


def test_the_api_raises_sweep_failed_with_what_finished(tmp_path, monkeypatch):
    import nnexp
    from nnexp.api import SweepFailed

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SweepFailed, match="stopped at job 1, which failed") as raised:
        nnexp.sweep(*GRID, "quiet=true", "plots=false", fail_fast=True, **{"optim.lr": [0.1, -1, 0.2]})
    summary = raised.value.sweep.summary
    assert sorted(summary["status"]) == ["1 failed", "1 missing", "ok"]
    assert [run.dir.name for run in raised.value.sweep.runs] == ["0"]


def test_a_sweeper_whose_sweep_ends_in_an_error_stops_its_live_line():
    from types import SimpleNamespace

    from nnexp.progress import stop_in

    progress = SweepProgress()
    progress.start(3, console=Console(file=io.StringIO(), width=200, force_terminal=True))
    progress.job_done(0, "ok", 0.5)
    assert progress.live is not None  # the sweep is not over
    stop_in(SimpleNamespace(callbacks=SimpleNamespace(callbacks=[object(), progress])))  # as Hydra's context holds it
    assert progress.live is None


def test_one_status_list_counts_failures_and_stops_fail_fast():
    from nnexp.metrics import FAILED, FINISHED

    progress, stream = plain_progress()
    for number, status in enumerate(["lost", "not_run", "pruned"]):
        progress.job_done(number, status, None)
    assert progress.failed == 1 and "lost" in FAILED and not set(FAILED) & set(FINISHED)
