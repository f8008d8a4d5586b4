"""Every optimiser x regulariser x stopping x model pairing, decided (nnexp.pairings)."""

from __future__ import annotations

import itertools

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from nnexp.compat import hydra_version_base
from nnexp.errors import ConfigError
from nnexp.pairings import check_pairing

OPTIMS = ("gd", "sgd", "adam", "rmsprop", "lbfgs", "lbfgs_torch", "sgd_torch", "adam_torch")
REGULARISERS = {"none": [], "l2": ["regularization=l2"], "l1": ["regularization=l1", "regularization.l1=0.01"],
                "dropout": ["model.dropout=0.2"]}
STOPPINGS = ("none", "convergence", "early_stopping")
MODELS = ("mlp", "linear", "logistic", "cnn", "cnn_small")
LBFGS = ("lbfgs", "lbfgs_torch")
# The decisions, written out: (optimiser, regulariser, stopping, model) -> the key a refusal names.
# A pairing not matched here trains as configured.
REFUSED = [
    (lambda o, r, s, m: o in LBFGS and r == "dropout", "model.dropout"),
    (lambda o, r, s, m: o in LBFGS and s == "early_stopping", "stopping"),
    (lambda o, r, s, m: r == "dropout" and m in ("linear", "logistic"), "model.dropout"),
]


def group_nodes() -> dict:
    """Each group option's composed node, composed once (not once per pairing)."""
    nodes = {}
    GlobalHydra.instance().clear()
    with initialize_config_module("nnexp.configs", **hydra_version_base()):
        for optim in OPTIMS:
            nodes["optim", optim] = compose("train", overrides=[f"optim={optim}"]).optim
        for name, overrides in REGULARISERS.items():
            cfg = compose("train", overrides=overrides)
            nodes["regularization", name] = cfg.regularization
            nodes["dropout", name] = name == "dropout"
        for stopping in STOPPINGS:
            nodes["stopping", stopping] = compose("train", overrides=[f"stopping={stopping}"]).stopping
        for model in MODELS:
            nodes["model", model] = compose("train", overrides=[f"model={model}"]).model
    GlobalHydra.instance().clear()
    return nodes


NODES = group_nodes()
PAIRINGS = list(itertools.product(OPTIMS, REGULARISERS, STOPPINGS, MODELS))


def expected_key(pairing) -> str | None:
    return next((key for rule, key in REFUSED if rule(*pairing)), None)


@pytest.mark.parametrize("pairing", PAIRINGS, ids=["-".join(p) for p in PAIRINGS])
def test_every_pairing_is_decided(pairing):
    optim, regulariser, stopping, model = pairing
    node = OmegaConf.to_container(NODES["model", model])
    node["dropout"] = 0.2 if NODES["dropout", regulariser] else 0.0
    cfg = OmegaConf.create({"optim": NODES["optim", optim], "regularization": NODES["regularization", regulariser],
                            "stopping": NODES["stopping", stopping], "model": node})
    key = expected_key(pairing)
    if key is None:
        check_pairing(cfg)
        return
    with pytest.raises(ConfigError) as refused:
        check_pairing(cfg)
    assert refused.value.key == key
    assert "\n" not in str(refused.value)


def test_lbfgs_with_dropout_is_one_line_before_training(run_nnexp):
    with pytest.raises(ConfigError, match="model.dropout=0.2 is not allowed: L-BFGS cannot train with dropout: "
                                          "scikit-learn has no dropout, and L-BFGS's line search needs a deterministic objective"):
        run_nnexp("data=moons", "optim=lbfgs", "model.dropout=0.2")
