"""The raw, unscaled dataset every source produces, and how its task is decided."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from nnexp.errors import ConfigError, DataError

TASKS = ("regression", "binary", "multiclass")
MAX_FEATURE_MAGNITUDE = 1e150  # squared in the scaler's variance: beyond ~1e154 it is infinite
TASK_CHOICES = ("auto", "regression", "classification")


@dataclass
class DataBundle:
    """A train/test split of numeric features and encoded targets, before any scaling.

    Scaling is fitted later, on whatever part of the training split a fit uses
    (the whole split, or one cross-validation fold), never on test rows.
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    task: str
    classes: list = field(default_factory=list)
    feature_names: list[str] = field(default_factory=list)
    target_name: str = "target"
    scale: bool = True
    scale_target: bool = True
    scaling: str = "standard"  # standard: per feature (tabular); pixels: one mean and std over all pixels
    validation_fraction: float = 0.0  # training rows held out as a validation split (Keras's validation_split)

    @cached_property
    def fingerprint(self) -> str:
        """A hash of the loaded arrays, part of every job's identity: an edited file, other
        generator settings or another copy of a bundled set change it, and so never reuse a
        stored result. (It hashes what the source produced, ~60 ms for MNIST, once per process.)"""
        digest = hashlib.blake2b(digest_size=8)
        for array in (self.X_train, self.y_train, self.X_test, self.y_test):
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype.str}{array.shape};".encode())
            digest.update(memoryview(array).cast("B"))
        return digest.hexdigest()

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example: (features,) for tabular data, (channels, height, width) for images."""
        return tuple(int(d) for d in self.X_train.shape[1:])

    @property
    def n_outputs(self) -> int:
        """Width of the network's output layer for this task."""
        if self.task == "binary":
            return 1
        if self.task == "multiclass":
            return len(self.classes)
        return 1 if self.y_train.ndim == 1 else self.y_train.shape[1]

    @property
    def is_classification(self) -> bool:
        return self.task != "regression"


def check_validation_fraction(value) -> float:
    """``data.validation_fraction`` as a float in [0, 1)."""
    if not 0.0 <= float(value) < 1.0:
        raise ConfigError("data.validation_fraction", value, "a fraction in [0, 1), e.g. 0.1 (0: no validation split)")
    return float(value)


def fit_validation_fraction(bundle: DataBundle, stopping) -> float:
    """The training rows a fit holds out for validation: ``data.validation_fraction`` (a split that
    is scored every epoch, as Keras's ``validation_split``) or early stopping's own
    ``stopping.validation_fraction``; both set to different fractions is a config error."""
    data, early = bundle.validation_fraction, float(stopping.validation_fraction)
    if data > 0 and early > 0 and data != early:
        raise ConfigError("data.validation_fraction", data,
                          f"the same fraction as stopping.validation_fraction={early}, or 0 (one validation split per fit)")
    return max(data, early)


MAX_AUTO_CLASSES = 20


def infer_task(y: np.ndarray, requested: str, key: str = "data.task") -> str:
    """Decide regression, binary or multiclass from the target and the requested task.

    ``auto`` treats text labels, and whole numbers with at most 20 distinct values, as classes;
    anything else is regression. scikit-learn's ``type_of_target`` then tells binary from
    multiclass. A continuous target given to a classification task is an error, because
    rounding it silently would mislead.
    """
    from sklearn.utils.multiclass import type_of_target

    if requested not in TASK_CHOICES:
        raise ConfigError(key, requested, f"choose one of {', '.join(TASK_CHOICES)}")
    y = np.asarray(y)
    numeric = np.issubdtype(y.dtype, np.number)
    if requested == "regression":
        if not numeric:
            raise DataError(f"{key}=regression, but the target holds text labels; use {key}=classification")
        return "regression"
    kind = type_of_target(y)
    n_values = len(np.unique(y))
    looks_continuous = kind.startswith("continuous") or (
        requested == "auto" and numeric and n_values > MAX_AUTO_CLASSES
    )
    if looks_continuous:
        if requested == "classification" and kind.startswith("continuous"):
            raise DataError(
                f"{key}=classification, but the target is continuous ({n_values} distinct values); "
                f"use {key}=regression"
            )
        if requested == "auto":
            return "regression"
    if requested == "classification" and numeric and n_values > MAX_AUTO_CLASSES and n_values * 5 > len(y):
        raise DataError(  # whole numbers like a count or a price: classes with a row or two each would mislead
            f"{key}=classification, but the numeric target has {n_values} distinct values in {len(y)} rows, fewer "
            f"than 5 rows per class: it is a regression target; use {key}=regression (or auto)"
        )
    if kind in ("binary", "multiclass"):
        if n_values < 2:
            raise DataError(f"the target has one class ({np.unique(y)[0]!r}); classification needs rows of at least two classes")
        return kind
    raise DataError(f"the target has type '{kind}', which nnexp cannot train on; give one target column")


def encode_targets(y: np.ndarray, task: str) -> tuple[np.ndarray, list]:
    """Labels become 0..k-1 integers (classes keep their original values); regression stays float."""
    if task == "regression":
        return np.asarray(y, dtype=np.float64), []
    from sklearn.preprocessing import LabelEncoder

    encoder = LabelEncoder().fit(y)
    return encoder.transform(y).astype(np.int64), encoder.classes_.tolist()


def check_finite(X: np.ndarray, y: np.ndarray, feature_names: list[str], where: str) -> None:
    """Raise a DataError naming the columns that hold NaN or infinite values."""
    X = np.asarray(X, dtype=np.float64)
    bad = ~np.isfinite(X.reshape(len(X), -1))
    if bad.any():
        columns = np.flatnonzero(bad.any(axis=0))
        names = [feature_names[i] if i < len(feature_names) else str(i) for i in columns[:5]]
        raise DataError(
            f"{where}: {int(bad.sum())} NaN or infinite feature values in column(s) {', '.join(names)}; "
            "drop or impute them before training"
        )
    huge = np.abs(np.where(bad, 0.0, X.reshape(len(X), -1))).max(axis=0, initial=0.0) > MAX_FEATURE_MAGNITUDE
    if huge.any():
        names = [feature_names[i] if i < len(feature_names) else str(i) for i in np.flatnonzero(huge)[:5]]
        raise DataError(f"{where}: values beyond {MAX_FEATURE_MAGNITUDE:g} in column(s) {', '.join(names)} overflow when "
                        "scaled; rescale them (e.g. to other units) before training")
    if np.issubdtype(np.asarray(y).dtype, np.number) and not np.isfinite(np.asarray(y, dtype=np.float64)).all():
        raise DataError(f"{where}: the target holds NaN or infinite values; drop those rows before training")


def check_folds(bundle: DataBundle, n_folds: int) -> None:
    """``cv`` no larger than the smallest class's training rows (scikit-learn warns and makes
    folds without that class), or than the training rows for regression."""
    if bundle.is_classification:
        smallest = int(np.bincount(bundle.y_train).min())
        if n_folds > smallest:
            raise ConfigError("cv", n_folds, f"at most {smallest} folds: the smallest class has {smallest} training rows")
    elif n_folds > len(bundle.y_train):
        raise ConfigError("cv", n_folds, f"at most {len(bundle.y_train)} folds, one per training row")
