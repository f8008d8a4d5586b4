"""nnexp's Optuna sweeper, checked through Optuna's own API reading the study back."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser

from nnexp import cli
from nnexp.errors import ConfigError
from streams import Stream, wait_for

optuna = pytest.importorskip("optuna")

pytestmark = pytest.mark.hydra
SMALL = ["data=iris", "cv=2", "trainer.max_epochs=4", "quiet=true", "logger=none", "hydra.callbacks.sweep_summary.figures=foreground"]


@pytest.fixture
def sweep(tmp_path, monkeypatch):
    """sweep(*overrides, name=...) runs ``nnexp -m sweep=optuna_mlp ...`` in this process, with
    the study in tmp_path/optuna.db; returns the sweep dir the worker claimed."""
    monkeypatch.chdir(tmp_path)

    def _sweep(*overrides: str, name: str = "sweep") -> Path:
        GlobalHydra.instance().clear()
        monkeypatch.setattr(sys, "argv", ["nnexp", "-m", "sweep=optuna_mlp", f"hydra.sweep.dir={name}",
                                          "hydra.sweeper.storage=sqlite:///optuna.db", *SMALL, *overrides])
        cli.main()
        return tmp_path / name

    return _sweep


def load(tmp_path: Path, storage: str | None = None, study: str = "nnexp_mlp"):
    """The study, read back through Optuna's own API."""
    storage = storage or f"sqlite:///{tmp_path / 'optuna.db'}"
    if storage.startswith("journal://"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        storage = JournalStorage(JournalFileBackend(storage[len("journal://"):]))
    return optuna.load_study(study_name=study, storage=storage)


def job_params(job_dir: Path) -> dict[str, str]:
    lines = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text())
    return dict(line.split("=", 1) for line in lines if not line.startswith("trial="))


def test_search_space_speaks_the_optuna_plugins_syntax():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from nnexp.studies.search_space import search_space

    lines = ["a=interval(0.1, 1)", "b=tag(log, interval(1e-5, 10))", "c=int(interval(1, 8))", "d=choice([10],[50, 50])",
             "e=range(2, 9, 3)", "f=range(0.5, 2.0, 0.5)", "g=3"]
    space = search_space(OverridesParser.create().parse_overrides(lines))
    assert space.distributions == {
        "a": FloatDistribution(0.1, 1.0), "b": FloatDistribution(1e-5, 10.0, log=True), "c": IntDistribution(1, 8),
        "d": CategoricalDistribution(["[10]", "[50,50]"]),
        "e": IntDistribution(2, 8, step=3),  # range excludes its stop, as everywhere in Hydra
        "f": FloatDistribution(0.5, 1.5, step=0.5),
    }
    assert space.fixed == ["g=3"]
    assert space.overrides({"a": 0.5}) == ["g=3", "a=0.5"]
    with pytest.raises(ConfigError, match=r"^b=.*positive bounds"):
        search_space(OverridesParser.create().parse_overrides(["b=tag(log, interval(0, 1))"]))
    with pytest.raises(ConfigError, match="hydra.sweeper.params"):
        search_space(OverridesParser.create().parse_overrides(["g=3"]))


def test_study_records_every_trial_and_a_relaunch_tops_it_up(sweep, tmp_path, capsys):
    first = sweep("hydra.sweeper.n_trials=3")
    study = load(tmp_path)
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    for trial in trials:  # each trial's job dir is named by its number and holds that trial's run
        job_dir = first / str(trial.number)
        metrics = json.loads((job_dir / "metrics.json").read_text())
        assert metrics["objective"] == pytest.approx(trial.value)
        assert job_params(job_dir) == {**{k: str(v) for k, v in trial.params.items()}, **job_params(job_dir)}
        assert {k: job_params(job_dir)[k] for k in trial.params} == {k: str(v) for k, v in trial.params.items()}
    rows = (first / "study.csv").read_text().splitlines()
    assert len(rows) == 4 and rows[0].startswith("number,state,value")
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 3

    capsys.readouterr()
    second = sweep("hydra.sweeper.n_trials=4", name="again")  # the study's total: one more trial
    assert [t.number for t in load(tmp_path).get_trials()] == [0, 1, 2, 3]
    # its progress counts on from the study's three trials, to its best (the trial run elsewhere included)
    best = load(tmp_path).best_trial
    last = [line for line in capsys.readouterr().out.splitlines() if line.startswith("progress: ")][-1]
    assert last.startswith("progress: sweep: 4/4 trials, ") and last.endswith(f"best {best.value:.4f} (job {best.number})")
    assert sorted(p.name for p in second.iterdir() if p.name.isdigit()) == ["3"]
    sweep("hydra.sweeper.n_trials=2", "hydra.sweeper.n_trials_scope=run", name="more")  # two more, whatever the total
    assert len(load(tmp_path).get_trials()) == 6
    # the same data spelt out is the same study's; other data is refused before it asks a trial: its
    # scores, count and best would mix with these
    sweep("hydra.sweeper.n_trials=1", "hydra.sweeper.n_trials_scope=run", "data=iris", "data.test_size=0.25", name="same")
    assert len(load(tmp_path).get_trials()) == 7
    with pytest.raises(SystemExit) as refused:
        sweep("hydra.sweeper.n_trials=8", "data=wine", name="other")
    assert refused.value.code == 2 and len(load(tmp_path).get_trials()) == 7
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: hydra.sweeper.study_name='nnexp_mlp' is not allowed: a study "
                                                      "of this sweep's data; its trials were run on other data (data=iris")


def test_a_second_worker_in_the_same_dir_gets_its_own(sweep, tmp_path):
    first = sweep("hydra.sweeper.n_trials=1", name="shared")
    sweep("hydra.sweeper.n_trials=2", name="shared")
    second = tmp_path / "shared-2"
    assert (first / "0" / "metrics.json").is_file() and (second / "1" / "metrics.json").is_file()
    assert not (first / "1").exists() and not (second / "0").exists()


def test_a_failing_trial_is_told_fail_with_its_message_and_the_sweep_goes_on(sweep, tmp_path):
    sweep("hydra.sweeper.n_trials=4", "model.activation=choice(relu,bogus)")
    trials = load(tmp_path).get_trials()
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert failed and len(failed) < 4
    assert all(t.params["model.activation"] == "bogus" for t in failed)
    assert all("model.activation" in t.user_attrs["error"] for t in failed)
    assert all(t.state.name == "COMPLETE" for t in trials if t.params["model.activation"] == "relu")


def test_pruning_stops_unpromising_trials_and_records_them(sweep, tmp_path):
    sweep("hydra.sweeper.n_trials=8", "trainer.max_epochs=30", "stopping=none", "hydra.sweeper.report_every=2",
          "hydra.sweeper.pruner={_target_:optuna.pruners.MedianPruner,n_startup_trials:2,n_warmup_steps:3}")
    study = load(tmp_path)
    pruned = [t for t in study.get_trials() if t.state.name == "PRUNED"]
    assert pruned, "the median pruner stopped no trial"
    for trial in pruned:
        metrics = json.loads((tmp_path / "sweep" / str(trial.number) / "metrics.json").read_text())
        assert metrics["status"] == "pruned" and metrics["epochs"] == trial.last_step < 30
        assert all(step % 2 == 0 for step in trial.intermediate_values)
        assert metrics["objective"] == pytest.approx(trial.intermediate_values[trial.last_step], abs=1e-6)
    complete = [t for t in study.get_trials() if t.state.name == "COMPLETE"]
    assert complete and all(len(t.intermediate_values) > 0 for t in complete)
    stored = list((tmp_path / "multirun" / ".store").glob("*/metrics.json"))
    assert len(stored) == len(complete)  # a pruned result is not a finished one: never stored


def test_summary_of_a_study_from_its_storage(sweep, tmp_path, capsys, monkeypatch):
    sweep("hydra.sweeper.n_trials=3")
    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["nnexp-summary", "--study", "nnexp_mlp", "--storage", "sqlite:///optuna.db", "--no-plots"])
    cli.summary_main()
    out = capsys.readouterr().out
    best = load(tmp_path).best_trial
    assert f"best (trial {best.number}, value {best.value:.4f})" in out
    monkeypatch.setattr(sys, "argv", ["nnexp-summary", "--study", "nope", "--storage", "sqlite:///optuna.db"])
    with pytest.raises(SystemExit) as exit_info:
        cli.summary_main()
    assert exit_info.value.code == 2 and "no study of that name" in capsys.readouterr().err
    for storage in ("journal://missing.log", "sqlite:///missing.db"):  # reading makes no storage file
        monkeypatch.setattr(sys, "argv", ["nnexp-summary", "--study", "nnexp_mlp", "--storage", storage])
        with pytest.raises(SystemExit) as exit_info:
            cli.summary_main()
        assert exit_info.value.code == 2 and not list(tmp_path.glob("missing.*"))


WORKERS_STUDY = "workers"  # its own on the session's PostgreSQL server, where the README's commands keep nnexp_mlp


def nnexp_worker(cwd: Path, storage: str, *overrides: str, launch_log: bool = False) -> subprocess.Popen:
    """One ``nnexp -m sweep=optuna_mlp`` worker process; ``launch_log``: with the launcher's
    ``#N : overrides`` line as each trial's job starts."""
    return subprocess.Popen(
        [sys.executable, "-m", "nnexp.cli", "-m", "sweep=optuna_mlp", f"hydra.sweeper.storage={storage}",
         f"hydra.sweeper.study_name={WORKERS_STUDY}", *SMALL,
         *([] if launch_log else ["hydra/hydra_logging=none"]), "hydra/job_logging=none", *overrides],
        cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def two_workers_at_once(tmp_path: Path, storage: str) -> None:
    """Two workers started together on one study, six trials each: twelve distinct trials, no
    job dir written twice, and the summary's best is Optuna's ``study.best_trial``."""
    workers = [nnexp_worker(tmp_path, storage, "hydra.sweeper.n_trials=6", "hydra.sweeper.n_trials_scope=run",
                            "hydra.sweep.dir=multirun/same") for _ in range(2)]
    outputs = [worker.communicate()[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    study = load(tmp_path, storage, WORKERS_STUDY)
    trials = study.get_trials()
    assert len(trials) == 12 and all(t.state.name == "COMPLETE" for t in trials)
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 12  # no configuration trained twice
    dirs = {Path(t.user_attrs["nnexp"]["job_dir"]) for t in trials}
    assert len(dirs) == 12 and {d.parent.name for d in dirs} == {"same", "same-2"}
    for trial in trials:  # each job dir holds its own trial's settings and result
        job_dir = Path(trial.user_attrs["nnexp"]["job_dir"])
        assert {k: job_params(job_dir)[k] for k in trial.params} == {k: str(v) for k, v in trial.params.items()}
        assert json.loads((job_dir / "metrics.json").read_text())["objective"] == pytest.approx(trial.value)
    best = study.best_trial
    assert any(f"best (trial {best.number}, value {best.value:.4f})" in out for out in outputs[-1:] + outputs[:1])


def test_two_workers_share_a_journal_file(tmp_path):
    two_workers_at_once(tmp_path, f"journal://{tmp_path / 'study.log'}")


@pytest.mark.server
def test_two_workers_share_a_postgresql_study(tmp_path, postgres_url):
    two_workers_at_once(tmp_path, postgres_url)
    # A killed worker's trial ends FAILED when the next worker starts, and that worker completes the study.
    worker = nnexp_worker(tmp_path, postgres_url, "hydra.sweeper.n_trials=14", "trainer.max_epochs=100000",
                          "stopping=none", "hydra.sweep.dir=multirun/killed", launch_log=True)
    output = Stream(worker.stdout)
    wait_for(lambda: "#12 : " in output.text, output)  # trial 12 was asked, recorded and launched
    worker.send_signal(signal.SIGKILL)
    worker.communicate()
    running = load(tmp_path, postgres_url, WORKERS_STUDY).get_trials(states=(optuna.trial.TrialState.RUNNING,))
    assert [t.number for t in running] == [12] and "nnexp" in running[0].user_attrs and running[0].params
    finisher = nnexp_worker(tmp_path, postgres_url, "hydra.sweeper.n_trials=14", "hydra.sweep.dir=multirun/after")
    out = finisher.communicate()[0]
    assert finisher.returncode == 0, out
    trials = {t.number: t for t in load(tmp_path, postgres_url, WORKERS_STUDY).get_trials()}
    assert trials[12].state.name == "FAIL" and "ended before the trial finished" in trials[12].user_attrs["error"]
    assert sum(t.state.name == "COMPLETE" for t in trials.values()) == 14


def test_batched_members_report_to_their_own_trials_and_pruned_ones_leave_the_stack(sweep, tmp_path):
    # Two batches of six: the median pruner compares the second batch with the first, finished one.
    sweep("hydra.sweeper.n_trials=12", "hydra.sweeper.n_jobs=6", "launcher=batched", "trainer.max_epochs=30",
          "stopping=none", "hydra.sweeper.report_every=2", "data=breast_cancer",
          "hydra.sweeper.pruner={_target_:optuna.pruners.MedianPruner,n_startup_trials:0,n_warmup_steps:3}")
    trials = load(tmp_path).get_trials()
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert pruned and len(pruned) < len(trials)
    for trial in trials:  # every job reported the CV mean at each second epoch, in its own trial
        metrics = json.loads((tmp_path / "sweep" / str(trial.number) / "metrics.json").read_text())
        assert metrics["batched"] is True
        assert sorted(trial.intermediate_values) == list(range(2, int(metrics["epochs"]) + 1, 2))
        if trial.state.name == "PRUNED":
            assert metrics["status"] == "pruned" and metrics["epochs"] < 30 and trial.last_step == metrics["epochs"]
        else:
            assert metrics["status"] == "ok" and metrics["epochs"] == 30
            # the last report is the CV mean of the folds' held-out scores, as the job's objective
            assert trial.intermediate_values[30] == pytest.approx(metrics["objective"], abs=1e-5)


def test_stack_pruning_reports_each_jobs_cv_mean_once_a_step():
    from nnexp.batched.pruning import StackPruning

    class Link:
        def __init__(self, prune_at):
            self.prune_at, self.reports = prune_at, []

        def due(self, step):
            return step % 2 == 0

        def report(self, value, step):
            self.reports.append((step, value))
            return step == self.prune_at

    first, second = Link(prune_at=4), Link(prune_at=None)
    pruning = StackPruning({0: first, 1: first, 2: second})  # two folds of one job, one of another
    assert pruning.report(1, {0: 0.5, 1: 0.7, 2: 0.9}) == set()  # not a reporting epoch
    assert pruning.report(2, {0: 0.5, 1: 0.7, 2: 0.9}) == set()
    assert pruning.report(4, {0: 0.6, 2: 0.8}) == {0, 1}  # member 1 stopped: its last score counts
    assert pruning.report(6, {2: 0.85}) == set()
    assert first.reports == [(2, pytest.approx(0.6)), (4, pytest.approx(0.65))]
    assert second.reports == [(2, 0.9), (4, 0.8), (6, 0.85)]


def test_ctrl_c_ends_the_running_trial_failed_and_exits_130(sweep, tmp_path, monkeypatch):
    import nnexp.cross_validation

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(nnexp.cross_validation, "fit_and_score", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        sweep("hydra.sweeper.n_trials=3")
    assert exit_info.value.code == 130
    trials = load(tmp_path).get_trials()
    assert [t.state.name for t in trials] == ["FAIL"] and "interrupted" in trials[0].user_attrs["error"]


def test_a_study_whose_every_trial_fails_stops_after_n_trials(sweep, tmp_path):
    sweep("hydra.sweeper.n_trials=2", "model.activation=choice(bogus,wrong)")
    trials = load(tmp_path).get_trials()
    assert [t.state.name for t in trials] == ["FAIL", "FAIL"]
