"""Turn a DataBundle into scaled tensors: the rows a fit trains on, its validation rows, and test."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from nnexp.data.bundle import DataBundle
from nnexp.errors import ConfigError
from nnexp.sklearn_random import SklearnDraws, validation_rows


@dataclass
class TensorSplit:
    """Features and targets of one split, as tensors ready for the network."""

    X: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def to(self, device: torch.device | str) -> "TensorSplit":
        return TensorSplit(self.X.to(device, non_blocking=True), self.y.to(device, non_blocking=True))


@dataclass
class FitData:
    """The splits of one fit: ``val`` is early stopping's split (watched every epoch),
    ``holdout`` a cross-validation fold's held-out rows (scored once, at the end)."""

    train: TensorSplit
    val: TensorSplit | None = None
    test: TensorSplit | None = None
    holdout: TensorSplit | None = None
    target_mean: np.ndarray | None = None
    target_scale: np.ndarray | None = None
    feature_scaler: object | None = None
    extras: dict = field(default_factory=dict)
    orders_state: tuple | None = None  # scikit-learn's generator after the split: the epochs' row orders draw on


    def named_splits(self) -> dict[str, TensorSplit]:
        """The splits that exist, by name, in the order train, val, holdout, test."""
        pairs = (("train", self.train), ("val", self.val), ("holdout", self.holdout), ("test", self.test))
        return {name: split for name, split in pairs if split is not None}


def _targets(y: np.ndarray, task: str, mean, scale, float64: bool = False) -> torch.Tensor:
    if task == "multiclass":
        return torch.as_tensor(y, dtype=torch.long)
    dtype = torch.float64 if float64 else torch.float32
    if task == "binary":
        return torch.as_tensor(y, dtype=dtype)
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    if mean is not None:
        y = (y - mean) / scale
    return torch.as_tensor(y, dtype=dtype)


def pixel_scaler(X_fit: np.ndarray, scale: bool):
    """Images: uint8 pixels to float32 once, standardised by one mean and std over all training
    pixels (a per-pixel scaler would blow up the always-black border pixels)."""
    mean, std = 0.0, 1.0
    if scale:
        pixels = torch.from_numpy(np.ascontiguousarray(X_fit)).float().div_(255.0)
        mean, std = float(pixels.mean()), float(pixels.std())
        del pixels

    def features(X: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(X)).float().div_(255.0).sub_(mean).div_(std)

    return features, (mean, std)


def make_fit_data(
    bundle: DataBundle,
    fit_rows: np.ndarray | None = None,
    holdout_rows: np.ndarray | None = None,
    validation_fraction: float = 0.0,
    seed: int = 0,
    draws: SklearnDraws | None = None,
    float64: bool = False,
) -> FitData:
    """Scale and split the training data for one fit.

    ``fit_rows``/``holdout_rows`` select a cross-validation fold from the training split (the
    fold gets no test split, as in ``GridSearchCV``); by default the fit uses the whole training
    split. The scaler is fitted on the fit rows only, as a scikit-learn ``Pipeline`` would, and
    ``validation_fraction`` then carves a stratified early-stopping split out of them (scikit-
    learn's MLP does the same). ``draws`` (scikit-learn's ``random_state``, see
    ``nnexp.sklearn_random``) draws that split as scikit-learn does, and the fit keeps the
    generator's state for its epochs; without it the split is drawn with ``seed``. ``float64``
    keeps the features in double precision (scikit-learn's L-BFGS on float64 data).
    """
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X_fit, y_fit = bundle.X_train, bundle.y_train
    X_val = y_val = X_holdout = y_holdout = None
    if fit_rows is not None:
        X_fit, y_fit = bundle.X_train[fit_rows], bundle.y_train[fit_rows]
    if holdout_rows is not None:
        X_holdout, y_holdout = bundle.X_train[holdout_rows], bundle.y_train[holdout_rows]

    if bundle.scaling == "pixels":
        features, scaler = pixel_scaler(X_fit, bundle.scale)
    else:
        scaler = StandardScaler().fit(X_fit.reshape(len(X_fit), -1)) if bundle.scale else None

        def features(X: np.ndarray) -> torch.Tensor:
            values = scaler.transform(X.reshape(len(X), -1)).reshape(X.shape) if scaler else X
            return torch.as_tensor(values, dtype=torch.float64 if float64 else torch.float32)

    mean = scale = None
    if bundle.scale_target:
        column = y_fit.reshape(len(y_fit), -1)
        mean, scale = column.mean(axis=0), column.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)

    random_state = draws.after_initialisation() if draws is not None else None
    if validation_fraction > 0:
        stratify = y_fit if bundle.is_classification else None
        try:
            if random_state is not None:
                rows, val_rows = validation_rows(random_state, y_fit, validation_fraction, bundle.is_classification)
                X_fit, X_val, y_fit, y_val = X_fit[rows], X_fit[val_rows], y_fit[rows], y_fit[val_rows]
            else:
                X_fit, X_val, y_fit, y_val = train_test_split(
                    X_fit, y_fit, test_size=validation_fraction, random_state=seed, stratify=stratify
                )
        except ValueError:  # too few rows for a (stratified) validation split
            rows = max(len(bundle.classes), 2)
            raise ConfigError("validation_fraction", validation_fraction,
                              f"a fraction that holds out at least {rows} of the {len(y_fit)} training rows "
                              f"(stopping.validation_fraction or data.validation_fraction), e.g. 0.1") from None

    def split(X, y) -> TensorSplit | None:
        if X is None:
            return None
        return TensorSplit(features(X), _targets(y, bundle.task, mean, scale, float64))

    return FitData(
        train=split(X_fit, y_fit),
        val=split(X_val, y_val),
        test=None if holdout_rows is not None else split(bundle.X_test, bundle.y_test),
        holdout=split(X_holdout, y_holdout),
        target_mean=mean,
        target_scale=scale,
        feature_scaler=scaler,
        orders_state=random_state.get_state() if random_state is not None else None,
    )
