"""Array sources: scikit-learn's bundled and generated datasets, split into train and test."""

from __future__ import annotations

from typing import Callable

import numpy as np

from nnexp.data.bundle import DataBundle, check_finite, check_validation_fraction, encode_targets, infer_task
from nnexp.errors import ConfigError, DataError


class ArraySource:
    """Base class: turns (X, y) from :meth:`arrays` into a stratified train/test :class:`DataBundle`."""

    def __init__(
        self,
        name: str,
        task: str = "auto",
        test_size: float = 0.25,
        split_seed: int = 0,
        scale: bool = True,
        scale_target: bool = True,
        validation_fraction: float = 0.0,
    ):
        if not 0.0 < float(test_size) < 1.0:
            raise ConfigError("data.test_size", test_size, "a fraction between 0 and 1, e.g. 0.25")
        self.name, self.task, self.test_size, self.split_seed = name, task, float(test_size), split_seed
        self.scale, self.scale_target = scale, scale_target
        self.validation_fraction = check_validation_fraction(validation_fraction)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, list[str], str]:
        """Return features, target, feature names and target name."""
        raise NotImplementedError

    def cache_token(self) -> tuple:
        """What, besides the config, decides the loaded data (a file's size and mtime, say)."""
        return ()

    def load(self) -> DataBundle:
        """Load, check, encode and split the data (stratified for classification)."""
        from sklearn.model_selection import train_test_split

        X, y, feature_names, target_name = self.arrays()
        check_finite(X, y, feature_names, f"data={self.name}")
        task = infer_task(y, self.task)
        y, classes = encode_targets(y, task)
        try:
            X_train, X_test, y_train, y_test = train_test_split(
                np.asarray(X, dtype=np.float64),
                y,
                test_size=self.test_size,
                random_state=self.split_seed,
                stratify=y if task != "regression" else None,
            )
        except ValueError as error:  # too few rows (per class) for a test split
            raise DataError(f"data={self.name}: {len(y)} rows cannot be split into training and test rows with "
                            f"data.test_size={self.test_size:g} ({error}); add rows, or change data.test_size") from None
        return DataBundle(
            name=self.name,
            X_train=X_train,
            y_train=y_train,
            X_test=X_test,
            y_test=y_test,
            task=task,
            classes=classes,
            feature_names=list(feature_names),
            target_name=target_name,
            scale=self.scale,
            scale_target=self.scale_target and task == "regression",
            validation_fraction=self.validation_fraction,
        )


class BundledSource(ArraySource):
    """A dataset shipped with scikit-learn, e.g. ``loader=sklearn.datasets.load_breast_cancer``."""

    def __init__(self, loader: Callable, **split_options):
        super().__init__(**split_options)
        self.loader = loader

    def arrays(self):
        bunch = self.loader()
        names = [str(name) for name in getattr(bunch, "feature_names", [])] or [
            f"x{i}" for i in range(bunch.data.shape[1])
        ]
        return bunch.data, bunch.target, names, "target"


class GeneratedSource(ArraySource):
    """A synthetic dataset from a generator returning ``(X, y)``, e.g. ``sklearn.datasets.make_moons``."""

    def __init__(self, generator: Callable, **split_options):
        super().__init__(**split_options)
        self.generator = generator

    def arrays(self):
        try:
            X, y = self.generator()
        except (TypeError, ValueError) as error:  # scikit-learn checks its generator's arguments
            name = getattr(getattr(self.generator, "func", self.generator), "__name__", "the generator")
            raise ConfigError("data.generator", name, f"arguments {name} accepts ({str(error).splitlines()[0]})") from None
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[:, None]
        return X, np.asarray(y), [f"x{i}" for i in range(X.shape[1])], "y"
