"""The metrics record: what a fit measured and what a job's metrics.json holds, as typed fields.

A fit's producers (the sequential, cross-validated and batched trainers) build ``FitMetrics``;
``record`` wraps it in a ``RunRecord`` with the job's identity and objective and writes it; every
reader goes through ``read_record``. A misspelt field fails where it is written or read, instead
of turning into a NaN in a summary.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from nnexp.results import read_json, write_json

FINISHED = ("ok", "diverged")  # statuses of a job that trained to the end (failed and oom did not)
# Statuses of a job that ended without training to its end: it raised (failed, oom), or its task
# ran out of time (timeout), was cancelled (cancelled) or died otherwise (lost). A sweep's progress
# counts them as failures, and ``fail_fast`` stops at the first.
FAILED = ("failed", "oom", "timeout", "cancelled", "lost")


@dataclass
class FitMetrics:
    """One fit's measurements, or a cross-validated job's, aggregated over its folds."""

    status: str  # ok | diverged | pruned (an Optuna pruner stopped it)
    stop_reason: str
    epochs: float  # iterations for L-BFGS; the mean over folds under CV
    max_epochs: int
    fit_seconds: float
    params: int
    batch_size: int
    n_train: int
    train_loss: float
    train_score: float
    val_loss: float | None = None
    val_score: float | None = None
    test_loss: float | None = None
    test_score: float | None = None
    holdout_loss: float | None = None  # a CV fold's held-out rows, before aggregation
    holdout_score: float | None = None
    precision: str = "32-true"
    layers: list[dict] = field(default_factory=list)
    iterations: int | None = None  # L-BFGS
    function_evaluations: int | None = None
    batched: bool | None = None  # trained as a member of a stack (launcher=batched)
    cv: int | None = None  # cross-validation: folds, the held-out score's spread, per-fold rows
    val_score_std: float | None = None
    mean_fit_seconds: float | None = None
    folds: list[dict] | None = None

    def split_scores(self) -> dict[str, float]:
        """``{split}_loss`` and ``{split}_score`` of every split this fit was scored on."""
        return {name: value for name, value in self.fields().items()
                if name.endswith(("_loss", "_score")) and value is not None}

    def fields(self) -> dict[str, Any]:
        return {item.name: getattr(self, item.name) for item in fields(self)}


def objective(fit: FitMetrics) -> float:
    """What a sweep maximises: the validation (or cross-validation) score when there is one, else
    the training score; NaN for a diverged run; a pruned run's last score. Test data never
    selects a model."""
    if fit.status not in ("ok", "pruned"):
        return float("nan")
    return float(fit.val_score if fit.val_score is not None else fit.train_score)


@dataclass
class RunRecord:
    """A job's metrics.json: its identity, status and objective, and (once trained) its fit."""

    job_key: str
    status: str  # FINISHED | pruned (stopped by an Optuna pruner) | FAILED (``error`` says why) | not_run
    objective: float | None
    fit: FitMetrics | None = None
    data: str | None = None
    task: str | None = None
    score_name: str | None = None
    seed: int | None = None
    data_fingerprint: str | None = None  # DataBundle.fingerprint of what it trained on
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED and self.fit is not None

    @property
    def objective_value(self) -> float:
        return float("nan") if self.objective is None else float(self.objective)

    def to_json(self) -> dict[str, Any]:
        """The flat JSON object of metrics.json (fields that do not apply are left out)."""
        job = {name: value for name, value in asdict(self).items() if name != "fit"}
        payload = {name: value for name, value in job.items() if value is not None or name == "objective"}
        if self.fit is not None:
            payload.update((name, value) for name, value in self.fit.fields().items() if value is not None)
        return payload

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> "RunRecord":
        """Parse metrics.json; keys of neither record are ignored (files written by later versions)."""
        job_names = {item.name for item in fields(cls)} - {"fit"}
        fit_names = {item.name for item in fields(FitMetrics)}
        fit = FitMetrics(**{k: v for k, v in payload.items() if k in fit_names}) if "stop_reason" in payload else None
        try:
            return cls(fit=fit, **{k: v for k, v in payload.items() if k in job_names})
        except TypeError as error:  # a required field is missing
            raise ValueError(f"not a metrics record: {error}") from None


def trained_record(fit: FitMetrics, key: str, data: str, task: str, seed: int, fingerprint: str | None = None) -> RunRecord:
    """The record of a job whose fit finished (ok or diverged)."""
    value = objective(fit)
    return RunRecord(key, fit.status, None if math.isnan(value) else value, fit, data, task,
                     "r2" if task == "regression" else "accuracy", seed, fingerprint)


def write_record(path: Path, record: RunRecord) -> None:
    """Write metrics.json atomically."""
    write_json(path, record.to_json())


def read_record(path: Path) -> RunRecord:
    """Read metrics.json; ``ValueError`` for a file that is not a whole record."""
    payload = read_json(path)
    if not isinstance(payload, dict):
        raise ValueError(f"{path} is not a metrics record")
    try:
        return RunRecord.from_json(payload)
    except TypeError as error:  # a fit field missing
        raise ValueError(f"{path}: {error}") from None
