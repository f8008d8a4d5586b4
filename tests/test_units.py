"""Direct tests of the pure functions a sweep is made of: the stop count, fold aggregation,
the metrics record, the summary's grid points, the grid, and what can join a stack."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from nnexp.cross_validation import aggregate_folds
from nnexp.fit import FitResult
from nnexp.metrics import FitMetrics, RunRecord, objective, read_record, trained_record, write_record
from nnexp.sweeps.summary import Job, summarise_jobs
from nnexp.training.stopping import NoImprovementCount


def fit(**fields) -> FitMetrics:
    base = dict(status="ok", stop_reason="converged", epochs=10, max_epochs=200, fit_seconds=1.0, params=5,
                batch_size=10, n_train=100, train_loss=0.5, train_score=0.8)
    return FitMetrics(**{**base, **fields})


def test_no_improvement_count_is_sklearns():
    """A loss that keeps falling by less than tol still counts (the best follows it); a gain
    larger than tol resets the count; the stop comes when the count exceeds patience."""
    count = NoImprovementCount(tol=0.1, patience=2, maximize=False)
    assert [count.update(v) for v in (1.0, 0.95, 0.92, 0.91)] == [False, False, False, True]
    assert count.best == 0.91
    count = NoImprovementCount(tol=0.1, patience=2, maximize=False)
    assert [count.update(v) for v in (1.0, 0.95, 0.8, 0.79, 0.78)] == [False, False, False, False, False]
    score = NoImprovementCount(tol=0.0, patience=0, maximize=True)
    assert [score.update(v) for v in (0.5, 0.6, 0.6, 0.55)] == [False, False, False, True]  # equal is no worse


def test_aggregate_folds_reports_held_out_rows_as_validation():
    folds = [
        FitResult(fit(holdout_loss=0.4, holdout_score=0.9, test_score=0.7, test_loss=0.6, layers=[{"layer": "a"}]), [{"epoch": 1}], None, None),
        FitResult(fit(holdout_loss=0.6, holdout_score=0.7, val_loss=0.3, val_score=0.95, stop_reason="early_stopped",
                      fit_seconds=3.0, epochs=20), [{"epoch": 1}, {"epoch": 2}], None, None),
    ]
    job = aggregate_folds(folds).metrics
    assert job.cv == 2 and job.val_score == pytest.approx(0.8) and job.val_score_std == pytest.approx(0.1)
    assert job.val_loss == pytest.approx(0.5) and job.test_score is None and job.holdout_score is None
    assert job.fit_seconds == 4.0 and job.mean_fit_seconds == 2.0 and job.epochs == 15
    assert job.stop_reason == "converged,early_stopped" and job.layers == [{"layer": "a"}]
    assert folds[1].metrics.val_score == 0.95 and job.folds[1]["es_val_score"] == 0.95  # early stopping's own split
    assert "es_val_score" not in job.folds[0]
    assert [row["fold"] for row in aggregate_folds(folds).history] == [0, 1, 1]
    diverged = aggregate_folds([folds[0], FitResult(fit(status="diverged", stop_reason="diverged", holdout_loss=math.nan,
                                                        holdout_score=0.1), [], None, None)])
    assert diverged.metrics.status == "diverged" and diverged.metrics.stop_reason == "diverged"


def test_the_record_round_trips_and_a_misspelt_field_fails(tmp_path):
    record = trained_record(fit(val_score=0.9, val_loss=0.2, iterations=12), "key", "iris", "multiclass", 3)
    assert record.objective == 0.9 and record.score_name == "accuracy"
    write_record(tmp_path / "metrics.json", record)
    assert read_record(tmp_path / "metrics.json") == record
    with pytest.raises(TypeError):
        fit(test_scor=0.5)
    diverged = trained_record(fit(status="diverged"), "key", "wave", "regression", 0)
    assert diverged.objective is None and math.isnan(diverged.objective_value) and diverged.score_name == "r2"
    assert objective(fit()) == 0.8  # no validation split: the training score
    failed = RunRecord("key", "failed", None, error="ValueError: x")
    write_record(tmp_path / "failed.json", failed)
    assert read_record(tmp_path / "failed.json") == failed and not failed.finished
    (tmp_path / "half.json").write_text('{"status": "ok", "stop_reason": "converged"}')
    with pytest.raises(ValueError):
        read_record(tmp_path / "half.json")


def job(number: int, overrides: list[str], score: float | None, status: str = "ok", test: float = 0.5) -> Job:
    record = None if status == "unfinished" else RunRecord(
        f"k{number}", status, score, fit(status=status, val_score=score, test_score=test) if status in ("ok", "diverged") else None)
    return Job(Path(str(number)), overrides, record)


def test_summarise_jobs_groups_seeds_and_ranks_like_gridsearchcv():
    jobs = [
        job(0, ["alpha=0.1", "seed=0"], 0.8, test=0.7), job(1, ["alpha=0.1", "seed=1"], 0.9, test=0.9),
        job(2, ["alpha=1", "seed=0"], 0.95), job(3, ["alpha=1", "seed=1"], None, status="diverged"),
        job(4, ["alpha=10", "seed=0"], 0.86), job(5, ["alpha=10", "seed=1"], 0.86),
    ]
    rows, keys = summarise_jobs(jobs)
    assert keys == ["alpha"]
    by_alpha = {row["param_alpha"]: row for row in rows}
    assert [row["param_alpha"] for row in rows] == ["10", "0.1", "1"]  # a point with a diverged run comes last
    assert by_alpha["0.1"]["mean_val_score"] == pytest.approx(0.85) and by_alpha["0.1"]["std_val_score"] == pytest.approx(0.05)
    assert by_alpha["0.1"]["mean_test_score"] == pytest.approx(0.8) and by_alpha["0.1"]["std_test_score"] == pytest.approx(0.1)
    assert by_alpha["0.1"]["best_job"] == "1" and by_alpha["0.1"]["n_runs"] == 2
    assert math.isnan(by_alpha["1"]["mean_val_score"]) and by_alpha["1"]["status"] == "1 diverged, 1 ok"
    assert by_alpha["1"]["error"].startswith("the training loss became NaN") and by_alpha["10"]["error"] == ""
    assert [by_alpha[a]["rank_val_score"] for a in ("10", "0.1", "1")] == [1, 2, 3]
    assert [by_alpha[a]["grid_index"] for a in ("0.1", "1", "10")] == [0, 1, 2]


def test_the_grid_varies_the_first_key_slowest():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from nnexp.sweeps.grid import grid

    overrides = OverridesParser.create().parse_overrides(["a=1,2", "b=x", "c=range(0,2)", "a=3,4"])
    assert grid(overrides) == [["a=3", "b=x", "c=0"], ["a=3", "b=x", "c=1"], ["a=4", "b=x", "c=0"], ["a=4", "b=x", "c=1"]]


def test_override_dirname_is_hydras_format():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from nnexp.hydra_integration.overrides import override_dirname

    overrides = OverridesParser.create().parse_overrides(["b=2", "a=1", "seed=3"])
    assert override_dirname(overrides, kv_sep="_", item_sep="+", exclude_keys=["seed"]) == "a_1+b_2"


@pytest.mark.parametrize("overrides, reason", [
    ([], None),
    (["optim=sgd", "optim.momentum=0.5", "regularization.alpha=0.1", "seed=3"], None),
    (["model=cnn_small", "data=digits_images"], "is not an MLP"),
    (["optim=lbfgs"], None),
    (["optim=lbfgs_torch"], "is not batched (Adam, SGD and nnexp's L-BFGS are)"),
    (["optim=lbfgs", "optim.float64=false"], "L-BFGS in float32 is not batched"),
    (["optim=lbfgs", "data.validation_fraction=0.2"], "L-BFGS with a validation split is not batched"),
    (["schedule=invscaling"], "is not batched (constant is)"),
    (["+optim.amsgrad=true"], "optim.amsgrad=True is not batched"),
    (["trainer.precision=bf16-mixed"], "only fp32 is batched"),
])
def test_why_not_batchable_names_what_keeps_a_job_out_of_a_stack(compose_cfg, overrides, reason):
    from nnexp.batched.plan import why_not_batchable

    found = why_not_batchable(compose_cfg("data=iris", *overrides))
    assert (found is None) if reason is None else (found is not None and reason in found), found


def test_a_fit_result_carries_typed_metrics():
    result = FitResult(fit(), [], torch.nn.Linear(1, 1), None)
    assert result.metrics.split_scores() == {"train_loss": 0.5, "train_score": 0.8}


def test_the_epoch_bar_ends_on_the_last_epochs_scores():
    # It refreshes at most 10 times a second: epochs 2 and 3 end within 0.1 s of epoch 1, and the bar
    # ended on epoch 1's loss and score
    import io
    from types import SimpleNamespace

    from rich.console import Console

    from nnexp.training.callbacks import EpochProgress

    console = Console(file=io.StringIO(), width=120)
    bar = EpochProgress(console, "accuracy")
    module = SimpleNamespace(history=[], optimizers=lambda use_pl_optimizer: object())
    trainer = SimpleNamespace(max_epochs=3, should_stop=False)
    bar.on_train_start(trainer, module)
    for epoch in (1, 2, 3):
        module.history.append({"train_loss": 1 / epoch, "train_score": epoch / 10})
        bar.on_train_epoch_end(trainer, module)
    bar.on_train_end(trainer, module)
    assert "3/3 loss 0.3333  accuracy 0.3000" in console.file.getvalue().strip().splitlines()[-1]


def test_the_data_note_tells_a_changed_file_from_a_sweep_over_files():
    from dataclasses import replace

    from nnexp.sweeps.summary import data_note

    def on(number, overrides, fingerprint):
        made = job(number, overrides, 0.5)
        return replace(made, record=replace(made.record, data_fingerprint=fingerprint))

    swept = [on(0, ["data.path=a.csv"], "f1"), on(1, ["data.path=b.csv"], "f2")]
    assert data_note(swept) == "[dim]data fingerprints: f1, f2"  # two files chosen, none changed
    changed = [on(0, ["data.path=a.csv", "seed=0"], "f1"), on(1, ["data.path=a.csv", "seed=1"], "f3")]
    assert "a data file changed during the sweep" in data_note(changed) and "f1, f3" in data_note(changed)
    assert data_note([on(0, [], "f1")]) == "[dim]data fingerprint: f1"


def test_one_fit_without_folds_has_no_spread_in_the_summary():
    from nnexp.sweeps.summary import summary_table

    rows, keys = summarise_jobs([job(0, ["alpha=0.1"], 0.8), job(1, ["alpha=1"], 0.9)])
    assert all(math.isnan(row["std_val_score"]) for row in rows)  # was 0.0, shown as "0.9000 ± 0.0000"
    import io

    from rich.console import Console

    console = Console(file=io.StringIO(), width=150)
    console.print(summary_table(rows, keys, "sweep"))
    assert "0.9000" in console.file.getvalue() and "±" not in console.file.getvalue()
