"""k-fold cross-validation inside one job, as GridSearchCV does with an integer ``cv``."""

from __future__ import annotations

import numpy as np

from nnexp.data.bundle import DataBundle, fit_validation_fraction
from nnexp.data.splits import make_fit_data
from nnexp.fit import FitResult, fit_and_score

FOLD_KEYS = ("status", "stop_reason", "train_loss", "train_score", "val_loss", "val_score", "epochs", "fit_seconds")


def fold_indices(bundle: DataBundle, n_folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit rows, held-out rows) per fold of the training split: StratifiedKFold for
    classification, KFold for regression, unshuffled, as scikit-learn's ``cv=k``."""
    from sklearn.model_selection import KFold, StratifiedKFold

    splitter = StratifiedKFold(n_folds) if bundle.is_classification else KFold(n_folds)
    return list(splitter.split(bundle.X_train, bundle.y_train))


def cross_validate(cfg, factories, bundle: DataBundle, stopping, penalty, progress_factory=None) -> FitResult:
    """Fit one fresh network per fold (scaler fitted on the fold's fit rows) and aggregate."""
    results = []
    for number, (fit_rows, holdout_rows) in enumerate(fold_indices(bundle, int(cfg.cv))):
        data = make_fit_data(
            bundle, fit_rows=fit_rows, holdout_rows=holdout_rows,
            validation_fraction=fit_validation_fraction(bundle, stopping), seed=cfg.seed,
        )
        results.append(fit_and_score(
            cfg, factories, bundle, data, stopping, penalty, progress_factory() if progress_factory else None,
            describe=number == 0,
        ))
    return aggregate_folds(results)


def aggregate_folds(results: list[FitResult]) -> FitResult:
    """One job's result from its folds' results (fold 0 first, with the layer table).

    A fold's ``val_*`` is its held-out rows; with early stopping, the split it watches is carved
    from the fold's fit rows and reported as ``es_val_*``.
    """
    folds, history = [], []
    for number, result in enumerate(results):
        metrics = dict(result.metrics)
        if "val_score" in metrics:
            metrics["es_val_loss"], metrics["es_val_score"] = metrics.pop("val_loss"), metrics.pop("val_score")
        metrics["val_loss"], metrics["val_score"] = metrics.pop("holdout_loss"), metrics.pop("holdout_score")
        folds.append({"fold": number, **{key: metrics[key] for key in FOLD_KEYS}})
        history.extend({"fold": number, **row} for row in result.history)
    first, last = results[0], results[-1].metrics
    val_scores = np.array([fold["val_score"] for fold in folds], dtype=float)
    diverged = any(fold["status"] == "diverged" for fold in folds)
    summary = {
        "status": "diverged" if diverged else "ok",
        "stop_reason": "diverged" if diverged else ",".join(sorted({fold["stop_reason"] for fold in folds})),
        "cv": len(folds),
        "val_score": float(val_scores.mean()),
        "val_score_std": float(val_scores.std()),
        "val_loss": float(np.mean([fold["val_loss"] for fold in folds])),
        "train_score": float(np.mean([fold["train_score"] for fold in folds])),
        "train_loss": float(np.mean([fold["train_loss"] for fold in folds])),
        "epochs": float(np.mean([fold["epochs"] for fold in folds])),
        "max_epochs": last["max_epochs"],
        "fit_seconds": float(sum(fold["fit_seconds"] for fold in folds)),
        "mean_fit_seconds": float(np.mean([fold["fit_seconds"] for fold in folds])),
        "params": last["params"],
        "batch_size": last["batch_size"],
        "n_train": last["n_train"],
        "layers": first.metrics["layers"],
        "folds": folds,
    }
    if first.metrics.get("batched"):
        summary["batched"] = True  # trained as members of a stack (launcher=batched)
    return FitResult(summary, history, first.network, first.data)  # fold 0's model stands for the job
