"""Which model configs are scikit-learn's models, and which of them draw from its ``random_state``.

Light on purpose (no torch, no numpy): the config checks ask it before anything is built.
"""

from __future__ import annotations

MLP_TARGET = "nnexp.models.mlp.MLP"


def is_mlp(model_cfg) -> bool:
    """Whether a model config builds nnexp's MLP (linear and logistic nets are MLPs too)."""
    return model_cfg.get("_target_") == MLP_TARGET


def uses_sklearn_draws(model_cfg) -> bool:
    """Whether a model draws its weights, early-stopping split and minibatch orders from
    scikit-learn's ``random_state``: an MLP with ``init=sklearn`` (the default). ``init=torch``
    and CNNs keep torch's generators. The one place that decides it."""
    return is_mlp(model_cfg) and str(model_cfg.get("init", "sklearn")) == "sklearn"
