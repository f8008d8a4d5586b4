"""k-fold cross-validation inside one job, as GridSearchCV does with an integer ``cv``."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from nnexp.data.bundle import DataBundle, check_folds, fit_validation_fraction
from nnexp.data.splits import make_fit_data
from nnexp.fit import fit_and_score
from nnexp.handoff import FitResult
from nnexp.metrics import FitMetrics
from nnexp.sklearn_random import fit_data_options

FOLD_KEYS = ("status", "stop_reason", "train_loss", "train_score", "val_loss", "val_score", "epochs", "fit_seconds")


def fold_indices(bundle: DataBundle, n_folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit rows, held-out rows) per fold of the training split: StratifiedKFold for
    classification, KFold for regression, unshuffled, as scikit-learn's ``cv=k``."""
    from sklearn.model_selection import KFold, StratifiedKFold

    check_folds(bundle, n_folds)
    splitter = StratifiedKFold(n_folds) if bundle.is_classification else KFold(n_folds)
    return list(splitter.split(bundle.X_train, bundle.y_train))


def cross_validate(plan, progress_factory=None, trial=None) -> FitResult:
    """Fit one fresh network per fold of ``plan``'s training split (the scaler fitted on the
    fold's fit rows) and aggregate. ``trial`` (a ``TrialLink``) gets the first fold's held-out
    score epoch by epoch: folds train one after another, so the first fold is where a pruner
    can save the most; a pruned first fold ends the job."""
    cfg, bundle = plan.cfg, plan.bundle
    results = []
    for number, (fit_rows, holdout_rows) in enumerate(fold_indices(bundle, int(cfg.cv))):
        data = make_fit_data(
            bundle, fit_rows=fit_rows, holdout_rows=holdout_rows,
            validation_fraction=fit_validation_fraction(bundle, plan.stopping), seed=cfg.seed,
            **fit_data_options(cfg, bundle),
        )
        results.append(fit_and_score(cfg, plan.factories, bundle, data, plan.stopping, plan.penalty, progress_factory,
                                     describe=number == 0, trial=trial if number == 0 else None))
        if results[-1].metrics.status == "pruned":
            break
    return aggregate_folds(results)


def fold_row(number: int, metrics: FitMetrics) -> dict:
    """A fold's row in the job's ``folds``: its held-out rows are its ``val_*``; with early
    stopping, the split it watched (carved from the fold's fit rows) is its ``es_val_*``."""
    row = {"fold": number, **{key: getattr(metrics, key) for key in FOLD_KEYS}}
    if metrics.val_score is not None:
        row["es_val_loss"], row["es_val_score"] = metrics.val_loss, metrics.val_score
    row["val_loss"], row["val_score"] = metrics.holdout_loss, metrics.holdout_score
    return row


def aggregate_folds(results: list[FitResult]) -> FitResult:
    """One job's result from its folds' results; fold 0's model (and layer table) stands for the job."""
    folds = [fold_row(number, result.metrics) for number, result in enumerate(results)]
    history = [{"fold": number, **row} for number, result in enumerate(results) for row in result.history]
    first, last = results[0].metrics, results[-1].metrics
    val_scores = np.array([fold["val_score"] for fold in folds], dtype=float)
    statuses = {fold["status"] for fold in folds}
    status = next((name for name in ("diverged", "pruned") if name in statuses), "ok")
    summary = replace(
        last,
        status=status,
        stop_reason=status if status != "ok" else ",".join(sorted({fold["stop_reason"] for fold in folds})),
        cv=len(folds),
        val_score=float(val_scores.mean()),
        val_score_std=float(val_scores.std()),
        val_loss=float(np.mean([fold["val_loss"] for fold in folds])),
        train_score=float(np.mean([fold["train_score"] for fold in folds])),
        train_loss=float(np.mean([fold["train_loss"] for fold in folds])),
        epochs=float(np.mean([fold["epochs"] for fold in folds])),
        fit_seconds=float(sum(fold["fit_seconds"] for fold in folds)),
        mean_fit_seconds=float(np.mean([fold["fit_seconds"] for fold in folds])),
        layers=first.layers,
        folds=folds,
        holdout_loss=None, holdout_score=None, test_loss=None, test_score=None,
        iterations=None, function_evaluations=None, precision=first.precision,
    )
    return FitResult(summary, history, results[0].network, results[0].data)
