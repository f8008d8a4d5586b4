"""scikit-learn's layer-size tuples on the command line (nnexp.sklearn_spellings)."""

from __future__ import annotations

import pytest

from nnexp.command import sklearn_names
from nnexp.sklearn_spellings import tuples_as_lists


@pytest.mark.parametrize("arg, expected", [
    ("hidden_layer_sizes=(10,10,10)", "model.hidden_sizes=[10,10,10]"),
    ("hidden_layer_sizes=(5,)", "model.hidden_sizes=[5]"),
    ("model.hidden_sizes=(10, 10)", "model.hidden_sizes=[10,10]"),
    ("hidden_layer_sizes=(10,),(50,)", "model.hidden_sizes=[10],[50]"),
    ("hidden_layer_sizes=[5]", "model.hidden_sizes=[5]"),
    ("hidden_layer_sizes=100", "model.hidden_sizes=[100]"),  # scikit-learn's int: one hidden layer
    ("hidden_layer_sizes=10,50", "model.hidden_sizes=[10],[50]"),
])
def test_the_lectures_tuples_mean_nnexps_lists(arg, expected):
    assert sklearn_names([arg]) == [expected]


def test_other_parentheses_are_left_to_hydra():
    assert tuples_as_lists(["data.generator.noise=(0.1)", "hidden_layer_sizes=(a,b)"])[0] == [
        "data.generator.noise=(0.1)", "hidden_layer_sizes=(a,b)"]


def test_a_tuple_composes_to_the_layers_it_names(compose_cfg):
    cfg = compose_cfg(*sklearn_names(["hidden_layer_sizes=(10,10,10)", "activation=tanh"]))
    assert list(cfg.model.hidden_sizes) == [10, 10, 10]
