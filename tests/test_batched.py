"""launcher=batched: members trained together equal their sequential runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra

from omegaconf import OmegaConf, open_dict

pytestmark = pytest.mark.hydra  # also run on the oldest releases in CI


def assert_same_fits(batched: dict, sequential: dict, keys=("train_loss", "train_score", "val_loss", "val_score")) -> None:
    assert batched.keys() == sequential.keys() and batched
    for job, metrics in batched.items():
        assert metrics["batched"], job
        reference = sequential[job]
        assert metrics["status"] == reference["status"]
        for mine, theirs in zip(metrics.get("folds", [metrics]), reference.get("folds", [reference])):
            assert mine["epochs"] == theirs["epochs"] and mine["stop_reason"] == theirs["stop_reason"]
            for key in keys:
                if key in theirs:
                    assert mine[key] == pytest.approx(theirs[key], abs=1e-4), (job, key)


@pytest.mark.parametrize(
    "optimiser",
    [["optim=adam", "optim.lr=0.01,0.003"], ["optim=sgd", "optim.momentum=0.5,0.9", "optim.lr=0.05"]],
    ids=["adam", "sgd-nesterov"],
)
def test_members_match_sequential_runs(optimiser, sweep):
    grid = ["data=breast_cancer", "cv=3", "trainer.max_epochs=25", "regularization.alpha=1e-4,1", "seed=0,1", *optimiser]
    sequential = sweep("basic", *grid)
    batched = sweep("batched", "launcher=batched", *grid)
    assert len(batched) == 8
    assert all(m["folds"][0]["fit_seconds"] > 0 for m in batched.values())
    assert_same_fits(batched, sequential)


@pytest.mark.parametrize(
    "grid",
    [
        # binary; alpha 1e-4 runs into max_iter, alpha 100 converges in a few iterations and leaves first
        ["data=breast_cancer", "cv=3", "model.hidden_sizes=[20]", "optim.max_iter=60", "regularization.alpha=1e-4,1,100", "seed=0,1"],
        # multiclass on folds of 75, 75 and 74 rows (padded), with an L1 term; a max_fun budget of 25
        ["data=iris", "cv=3", "model.hidden_sizes=[8,8]", "model.activation=tanh", "optim.max_fun=25", "regularization.l1=0,0.01",
         "regularization.alpha=1e-3,1"],
        # regression; a float32 job runs one by one (its rounding, amplified by L-BFGS, is not the stack's)
        ["data=diabetes", "model.hidden_sizes=[5]", "optim.max_iter=40", "regularization.alpha=0.01,10", "optim.float64=true,false"],
    ],
    ids=["binary", "multiclass-l1-max_fun", "regression"],
)
def test_lbfgs_members_match_sequential_runs(grid, sweep):
    """Each member runs its own scipy L-BFGS-B: the same iterations, stop reasons and losses as its own run."""
    sequential = sweep("basic", "optim=lbfgs", *grid)
    batched = sweep("batched", "launcher=batched", "optim=lbfgs", *grid)
    float32 = {job for job in batched if not OmegaConf.load(Path("batched", job, "config.yaml")).optim.float64}
    assert all("batched" not in batched[job] for job in float32)
    batched, sequential = ({job: m for job, m in jobs.items() if job not in float32} for jobs in (batched, sequential))
    assert_same_fits(batched, sequential, keys=("train_loss", "train_score", "val_loss", "val_score", "test_loss", "test_score"))
    for job, metrics in batched.items():
        for mine, theirs in zip(metrics.get("folds", [metrics]), sequential[job].get("folds", [sequential[job]])):
            assert mine["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-6, abs=1e-9), job
        if "folds" not in metrics:  # one fit: its own iteration and evaluation counts
            assert (metrics["iterations"], metrics["function_evaluations"]) == (sequential[job]["iterations"], sequential[job]["function_evaluations"])
    reasons = {fold["stop_reason"] for m in batched.values() for fold in m.get("folds", [m])}
    assert len(reasons) > 1 or "converged" not in reasons, reasons  # members stopped at different points, for different reasons


def test_wide_lbfgs_networks_train_one_by_one(sweep, capsys, monkeypatch):
    from nnexp.batched import plan

    monkeypatch.setattr(plan, "LBFGS_MAX_STACKED_PARAMETERS", 3_000)  # 300k: a (10000,) net would take 8 s here
    jobs = sweep("wide", "launcher=batched", "optim=lbfgs", "optim.max_iter=2", "model.hidden_sizes=[100]", "regularization.alpha=1,10")
    assert len(jobs) == 2 and all(m["status"] == "ok" and "batched" not in m for m in jobs.values())
    assert "L-BFGS on 3,201 parameters is not stacked (up to 3,000" in capsys.readouterr().out  # breast cancer: (30 + 1) * 100 + 101


def test_lbfgs_stacks_hold_as_many_members_as_their_memory_allows(sweep, monkeypatch):
    """A chunk of L-BFGS members is cut to the stack's memory budget: here two members a stack."""
    from nnexp.batched import lbfgs, plan

    per_member = (2 * 10 + plan.LBFGS_VECTORS_BESIDE_PAIRS) * ((30 + 1) * 100 + 100 + 1) * 8  # history_size 10, (100,), breast cancer
    monkeypatch.setattr(plan, "LBFGS_STACK_BYTES", 2 * per_member + 1)
    real, stacks = lbfgs.train_lbfgs_stack, []

    def counted(members, spec, device="cpu"):
        stacks.append(len(members))
        return real(members, spec, device)

    monkeypatch.setattr(lbfgs, "train_lbfgs_stack", counted)
    jobs = sweep("budget", "launcher=batched", "optim=lbfgs", "optim.max_iter=3", "regularization.alpha=1,10,100")
    assert stacks == [2, 1] and all(m["status"] == "ok" and m["batched"] for m in jobs.values())


def test_an_lbfgs_stack_stopped_mid_fit_exits_as_ctrl_c_does(sweep, monkeypatch, capsys):
    from nnexp.batched.lbfgs import StackObjective

    real_call, calls = StackObjective.__call__, []

    def interrupted(self, points):
        calls.append(len(points))
        if len(calls) == 5:  # Ctrl-C in the middle of the stack's fit
            raise KeyboardInterrupt
        return real_call(self, points)

    monkeypatch.setattr(StackObjective, "__call__", interrupted)
    with pytest.raises(SystemExit) as exit:
        sweep("stopped", "launcher=batched", "optim=lbfgs", "data=iris", "cv=2", "regularization.alpha=0.01,0.1,1")
    assert exit.value.code == 130 and calls == [6] * 5


def test_a_member_with_no_rows_in_a_step_sits_it_out(sweep, monkeypatch):
    from nnexp.batched.optim import StackOptimizer

    # iris, 3 folds: 75, 75 and 74 training rows; batches of 37 leave the 74-row fold's third step empty.
    grid = ["data=iris", "cv=3", "batch_size=37", "trainer.max_epochs=6", "regularization.alpha=1e-4,1"]
    sequential = sweep("basic", *grid)
    real_step, sat_out = StackOptimizer.step, []

    def step(self, frozen=None):
        sat_out.append(0 if frozen is None else int(frozen.sum()))
        return real_step(self, frozen)

    monkeypatch.setattr(StackOptimizer, "step", step)
    batched = sweep("batched", "launcher=batched", *grid)
    assert sat_out.count(2) == 6  # the 74-row fold's two members, once per epoch
    assert_same_fits(batched, sequential)


def test_rows_gathered_step_by_step_train_as_rows_gathered_per_epoch(sweep, monkeypatch):
    import nnexp.batched.trainer as trainer

    grid = ["launcher=batched", "data=breast_cancer", "cv=2", "batch_size=64", "trainer.max_epochs=4", "regularization.alpha=0.1,1"]
    per_epoch = sweep("epoch", *grid)
    monkeypatch.setattr(trainer, "GATHER_ELEMENTS", 1)  # as for MNIST: one step's rows at a time
    per_step = sweep("step", *grid)
    assert per_epoch.keys() == per_step.keys() and len(per_epoch) == 2
    for job, metrics in per_epoch.items():
        assert [f["train_loss"] for f in metrics["folds"]] == [f["train_loss"] for f in per_step[job]["folds"]]


def test_a_stacks_penalty_scales_do_not_grow_with_its_steps(sweep, monkeypatch):
    import nnexp.batched.trainer as trainer

    # Each L2 and L1 gradient scale is as large as all the members' weights; one per step took
    # 64 MNIST members to 13.6 GB. Steps with the same rows per member share theirs.
    plans = []  # per plan: (steps, elements in its distinct scales, elements in theta)
    real_plan = trainer.Stack._plan

    def plan(self):
        real_plan(self)
        scales = {t.data_ptr(): t.numel() for step in self.steps for t in (step.l2, step.l1) if t is not None}
        plans.append((len(self.steps), sum(scales.values()), self.net.theta.numel()))

    monkeypatch.setattr(trainer.Stack, "_plan", plan)
    sweep("batched", "launcher=batched", "data=breast_cancer", "cv=3", "batch_size=16", "trainer.max_epochs=2",
          "regularization.alpha=0.1,1", "regularization.l1=0.01")
    assert plans
    for steps, scale_elements, theta_elements in plans:
        assert steps >= 15
        assert scale_elements <= 2 * 3 * theta_elements  # L2 and L1, for up to 3 batch shapes


def test_early_stopping_members_stop_alone_and_keep_their_best_weights(sweep):
    grid = ["data=wine", "stopping=early_stopping", "stopping.patience=3", "optim.lr=0.05,0.001", "trainer.max_epochs=60"]
    sequential = sweep("basic", *grid)
    batched = sweep("batched", "launcher=batched", *grid)
    assert_same_fits(batched, sequential, keys=("train_loss", "val_score", "test_score"))
    epochs = sorted(m["epochs"] for m in batched.values())
    assert epochs[0] < epochs[1]  # the fast learner stopped first, the other went on


def test_dropout_members_replay_their_sequential_dropout_masks(sweep):
    grid = ["data=wine", "cv=2", "model.dropout=0,0.2,0.5", "trainer.max_epochs=8", "batch_size=32"]
    sequential = sweep("basic", *grid)
    batched = sweep("batched", "launcher=batched", *grid)
    assert all(m["batched"] for m in batched.values())
    assert_same_fits(batched, sequential)


def test_a_diverging_member_does_not_disturb_the_others(sweep):
    grid = ["data=diabetes", "optim=sgd", "optim.lr=0.01,1e6", "trainer.max_epochs=20"]
    batched = sweep("batched", "launcher=batched", *grid)
    sequential = sweep("basic", *grid)
    assert sorted(m["status"] for m in batched.values()) == ["diverged", "ok"]
    assert_same_fits(batched, sequential, keys=("train_loss", "test_score"))


def test_jobs_that_cannot_batch_run_as_ordinary_jobs(sweep):
    jobs = sweep("batched", "launcher=batched", "data=iris", "model=logistic", "optim=lbfgs_torch", "regularization.alpha=0.1,1")
    assert len(jobs) == 2 and all(m["status"] == "ok" and "batched" not in m for m in jobs.values())
    jobs = sweep("decay", "launcher=batched", "data=iris", "+optim.weight_decay=0.1", "trainer.max_epochs=3", "optim.lr=0.01,0.1")
    assert len(jobs) == 2 and all(m["status"] == "ok" and "batched" not in m for m in jobs.values())


def test_a_rerun_batched_sweep_skips_finished_jobs(sweep, capsys):
    grid = ["launcher=batched", "data=iris", "regularization.alpha=0.1,1", "trainer.max_epochs=5"]
    first = sweep("first", *grid)
    capsys.readouterr()
    GlobalHydra.instance().clear()
    second = sweep("first", *grid)  # same dir and store: everything is finished
    assert capsys.readouterr().out.count("skipped, finished earlier") == 2
    assert first == second


def test_recorded_job_dirs_are_the_ones_hydra_writes(sweep, tmp_path):
    grid = ["data=iris", "regularization.alpha=0.1,1", "trainer.max_epochs=5", "refit=true"]
    sweep("basic", *grid)
    sweep("batched", "launcher=batched", *grid)
    for job in ("0", "1"):
        ours, hydras = tmp_path / "batched" / job / ".hydra", tmp_path / "basic" / job / ".hydra"
        for name in ("config.yaml", "overrides.yaml"):
            text = (ours / name).read_text()
            assert text == OmegaConf.to_yaml(OmegaConf.load(ours / name))  # OmegaConf's own YAML, byte for byte
        resolved = tmp_path / "batched" / job / "config.yaml"  # the run's own, resolved
        assert resolved.read_text() == OmegaConf.to_yaml(OmegaConf.load(resolved))
        task = OmegaConf.load(ours / "config.yaml")
        assert OmegaConf.to_container(task)["paths"]["output_dir"] == "${hydra:runtime.output_dir}"  # unresolved
        with open_dict(task):
            task.paths.store_dir = OmegaConf.load(hydras / "config.yaml").paths.store_dir
        assert task == OmegaConf.load(hydras / "config.yaml")
        same = [[o for o in OmegaConf.load(folder / "overrides.yaml") if not o.startswith(("paths.store_dir", "launcher"))] for folder in (ours, hydras)]
        assert same[0] == same[1] and "launcher=batched" in OmegaConf.load(ours / "overrides.yaml")
        recorded, reference = OmegaConf.load(ours / "hydra.yaml").hydra, OmegaConf.load(hydras / "hydra.yaml").hydra
        assert recorded.runtime.output_dir == str(tmp_path / "batched" / job) and recorded.job.num == int(job)
        for node in (recorded, reference):  # what differs between the two sweeps' commands
            with open_dict(node):
                for key in ("sweep", "launcher", "overrides", "runtime"):
                    del node[key]
                del node.job["override_dirname"]
        assert recorded == reference
    refits = [json.loads((tmp_path / name / "refit" / "metrics.json").read_text()) for name in ("batched", "basic")]
    assert refits[0]["batched"] and "batched" not in refits[1]  # the refit is trained as its sweep's jobs were
    for key in ("train_loss", "train_score", "test_score"):
        assert refits[0][key] == pytest.approx(refits[1][key], abs=1e-4)


@pytest.mark.parametrize("grid, key", [
    (["regularization.alpha=-1,0.1", "trainer.max_epochs=5"], "regularization.alpha"),
    (["optim=lbfgs", "optim.max_iter=0,5"], "optim.max_iter=0 is not allowed"),
], ids=["adam", "lbfgs"])
def test_a_bad_value_in_a_batched_grid_fails_only_its_job(sweep, grid, key):
    jobs = sweep("batched", "launcher=batched", "data=iris", *grid)
    by_status = {m["status"]: m for m in jobs.values()}
    assert set(by_status) == {"failed", "ok"}
    assert key in by_status["failed"]["error"] and by_status["ok"]["batched"]


def test_a_batched_sweep_killed_mid_way_keeps_the_jobs_of_finished_stacks(sweep, monkeypatch, capsys):
    import nnexp.batched.launch as launch

    grid = ["launcher=batched", "hydra.launcher.chunk_size=2", "data=iris", "regularization.alpha=0.01,0.1,1,10", "trainer.max_epochs=3"]
    real_train_stack, calls = launch.train_stack, []

    def killed_on_the_second_stack(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_train_stack(*args, **kwargs)

    monkeypatch.setattr(launch, "train_stack", killed_on_the_second_stack)
    with pytest.raises(SystemExit) as exit:  # Ctrl-C: exit 130, with the command that goes on
        sweep("killed", *grid)
    assert exit.value.code == 130 and "2 finished jobs kept in killed; go on with: nnexp resume=killed" in capsys.readouterr().err
    assert len(list((Path("killed_store")).glob("*/metrics.json"))) == 2  # the first stack's two jobs
    monkeypatch.setattr(launch, "train_stack", real_train_stack)
    capsys.readouterr()
    GlobalHydra.instance().clear()
    jobs = sweep("killed", *grid)
    assert capsys.readouterr().out.count("skipped, finished earlier") == 2
    assert sorted(m["status"] for m in jobs.values()) == ["ok"] * 4


def test_a_batched_sweep_with_job_chdir_records_through_hydras_run_job(sweep, tmp_path):
    jobs = sweep("chdir", "launcher=batched", "hydra.job.chdir=true", f"paths.store_dir={tmp_path / 'chdir_store'}",
                 "data=iris", "regularization.alpha=0.1,1", "trainer.max_epochs=3")
    assert len(jobs) == 2 and all(m["batched"] for m in jobs.values())
