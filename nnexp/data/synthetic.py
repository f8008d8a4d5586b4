"""Toy generators that scikit-learn does not ship."""

from __future__ import annotations

import numpy as np


def make_wave(n_samples: int = 100, noise: float = 0.5, random_state: int | None = 0):
    """A 1-D regression set: ``y = sin(4x) + x`` plus Gaussian noise, for ``x`` uniform on [-3, 3].

    Returns ``(X, y)`` with ``X`` of shape (n_samples, 1), like scikit-learn's ``make_*`` functions.
    """
    rng = np.random.default_rng(random_state)
    x = rng.uniform(-3.0, 3.0, size=n_samples)
    y = np.sin(4.0 * x) + x + noise * rng.normal(size=n_samples)
    return x[:, None], y
