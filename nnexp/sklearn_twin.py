"""A scikit-learn MLP that starts from an nnexp network's weights, for side-by-side comparisons.

scikit-learn draws its initial weights from its own generator, so the same seed gives other
weights in the two libraries and single fits differ by chance. Starting both from the same
weights leaves only what training does: the updates, the schedules, the stopping rule.
"""

from __future__ import annotations

import warnings

import numpy as np
from torch import nn

ACTIVATION_NAMES = ("relu", "tanh", "logistic", "identity")


def mlp_shape(network: nn.Module) -> tuple[tuple[int, ...], str, list[nn.Linear]]:
    """Hidden sizes, activation name and dense layers of an nnexp MLP (scikit-learn's four activations)."""
    linears = [layer for layer in network.modules() if isinstance(layer, nn.Linear)]
    names = [name for name, _ in network.named_children()]
    activation = next((a for a in ACTIVATION_NAMES if any(n.startswith(a) for n in names)), "identity")
    return tuple(layer.out_features for layer in linears[:-1]), activation, linears


def sklearn_twin(network: nn.Module, task: str, X: np.ndarray, y: np.ndarray, max_iter: int = 200, **params):
    """An ``MLPClassifier`` (``MLPRegressor`` for ``task="regression"``) whose ``fit(X, y)``
    trains from ``network``'s current weights.

    ``params`` are scikit-learn's (solver, alpha, learning_rate_init, ...). ``warm_start`` is on:
    the estimator is first fitted for one iteration so that scikit-learn sets up its
    attributes, then given the network's weights and a fresh history.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    sizes, activation, linears = mlp_shape(network)
    estimator = MLPRegressor if task == "regression" else MLPClassifier
    model = estimator(hidden_layer_sizes=sizes, activation=activation, warm_start=True, max_iter=1, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    model.coefs_ = [layer.weight.detach().double().cpu().numpy().T.copy() for layer in linears]
    model.intercepts_ = [layer.bias.detach().double().cpu().numpy().copy() for layer in linears]
    model.loss_curve_, model.best_loss_, model.n_iter_, model.t_ = [], np.inf, 0, 0
    if getattr(model, "validation_scores_", None) is not None:
        model.validation_scores_, model.best_validation_score_ = [], -np.inf
    model.max_iter = max_iter
    return model
