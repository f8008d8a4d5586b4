"""Image sources: the MNIST family from IDX files, permuted MNIST, and scikit-learn's 8x8 digits."""

from __future__ import annotations

import os

import numpy as np

from nnexp.data.bundle import DataBundle, check_validation_fraction
from nnexp.errors import ConfigError


def default_root() -> str:
    """``$NNEXP_DATA``, else ``./data``."""
    return os.environ.get("NNEXP_DATA", "data")


def stratified_subset(X: np.ndarray, y: np.ndarray, limit: int | None, seed: int, key: str):
    """At most ``limit`` rows, stratified by label (all rows when ``limit`` is null)."""
    if limit is None or limit >= len(y):
        return X, y
    if int(limit) < len(np.unique(y)):
        raise ConfigError(key, limit, f"at least {len(np.unique(y))} rows, one per class (or null for all)")
    from sklearn.model_selection import train_test_split

    X, _, y, _ = train_test_split(X, y, train_size=int(limit), random_state=seed, stratify=y)
    return X, y


def pixel_permutation(n_pixels: int, seed: int) -> np.ndarray:
    """One fixed shuffle of pixel positions, the same for every run and split with this seed:
    the lecture's ``np.random.RandomState(seed).permutation(n_pixels)`` (numpy's legacy generator,
    whose stream numpy keeps stable across versions)."""
    return np.random.RandomState(seed).permutation(n_pixels)


class ImageSource:
    """Base class: images (N, C, H, W) uint8 with integer labels, already split into train and test."""

    def __init__(
        self,
        name: str,
        limit_train: int | None = None,
        limit_test: int | None = None,
        split_seed: int = 0,
        permute_pixels: bool = False,
        permutation_seed: int = 42,
        scale: bool = True,
        validation_fraction: float = 0.0,
    ):
        for key, limit in (("data.limit_train", limit_train), ("data.limit_test", limit_test)):
            if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
                raise ConfigError(key, limit, "a whole number of images >= 1, or null for all")
        self.name, self.limit_train, self.limit_test, self.split_seed = name, limit_train, limit_test, split_seed
        self.permute_pixels, self.permutation_seed, self.scale = permute_pixels, permutation_seed, scale
        self.validation_fraction = check_validation_fraction(validation_fraction)

    def splits(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Train images, train labels, test images, test labels."""
        raise NotImplementedError

    def cache_token(self) -> tuple:
        return ()

    def load(self) -> DataBundle:
        X_train, y_train, X_test, y_test = self.splits()
        X_train, y_train = stratified_subset(X_train, y_train, self.limit_train, self.split_seed, "data.limit_train")
        X_test, y_test = stratified_subset(X_test, y_test, self.limit_test, self.split_seed, "data.limit_test")
        if X_train.ndim == 3:  # (N, H, W) -> (N, 1, H, W)
            X_train, X_test = X_train[:, None], X_test[:, None]
        if self.permute_pixels:
            order = pixel_permutation(int(np.prod(X_train.shape[1:])), self.permutation_seed)
            X_train = X_train.reshape(len(X_train), -1)[:, order].reshape(X_train.shape)
            X_test = X_test.reshape(len(X_test), -1)[:, order].reshape(X_test.shape)
        classes = np.unique(y_train).tolist()
        return DataBundle(
            name=self.name,
            X_train=np.ascontiguousarray(X_train),
            y_train=np.asarray(y_train, dtype=np.int64),
            X_test=np.ascontiguousarray(X_test),
            y_test=np.asarray(y_test, dtype=np.int64),
            task="multiclass" if len(classes) > 2 else "binary",
            classes=classes,
            feature_names=[],
            target_name="label",
            scale=self.scale,
            scale_target=False,
            scaling="pixels",
            validation_fraction=self.validation_fraction,
        )


class IdxImageSource(ImageSource):
    """``mnist``, ``fashion_mnist`` or ``kmnist`` from the four IDX files under ``root``."""

    def __init__(self, dataset: str = "mnist", root: str | None = None, **options):
        super().__init__(**options)
        self.dataset, self.root = dataset, root or default_root()

    def splits(self):
        from nnexp.data.idx import load_idx_dataset

        arrays = load_idx_dataset(self.root, self.dataset)
        return arrays["train_images"], arrays["train_labels"], arrays["test_images"], arrays["test_labels"]


class DigitsImageSource(ImageSource):
    """scikit-learn's 8x8 digits as 1-channel images (pixel values 0..16), split 75/25 stratified."""

    def __init__(self, test_size: float = 0.25, **options):
        super().__init__(**options)
        self.test_size = test_size

    def splits(self):
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        images = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)  # to the 0..255 scale of MNIST
        X_train, X_test, y_train, y_test = train_test_split(
            images, digits.target, test_size=self.test_size, random_state=self.split_seed, stratify=digits.target
        )
        return X_train, y_train, X_test, y_test
