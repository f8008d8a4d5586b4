"""scikit-learn's L-BFGS objective for a dense network, evaluated as scikit-learn evaluates it.

L-BFGS magnifies the last bits of its objective. torch's matmuls, ``tanh`` and ``sigmoid`` round
differently from numpy's BLAS, ``np.tanh`` and scipy's ``expit``, by a few ulps; after some 30-70
iterations such a fit takes another path than scikit-learn's, and about one long fit in two ends
elsewhere (scikit-learn does the same against itself with its data times 1 + 1e-15). So on the
CPU in float64, a plain MLP's objective and gradient are computed here with numpy and scipy, with
the same operations in the same order as scikit-learn's ``MLP*._backprop`` on its packed vector
(the installed version's formulas): the same ``random_state`` then gives scikit-learn's own fit,
and a small net skips autograd's overhead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import numpy as np
import torch
from scipy.special import expit, xlogy
from torch import nn

from nnexp.models.task import Task
from nnexp.training.penalty import WeightPenalty


def _relu(Z: np.ndarray) -> None:
    np.maximum(Z, 0, out=Z)


def _relu_derivative(Z: np.ndarray, delta: np.ndarray) -> None:
    delta[Z == 0] = 0


def _tanh_derivative(Z: np.ndarray, delta: np.ndarray) -> None:
    delta *= 1 - Z**2


def _logistic_derivative(Z: np.ndarray, delta: np.ndarray) -> None:
    delta *= Z
    delta *= 1 - Z


# Hidden activations scikit-learn has, by torch layer: (in place, its derivative from the output, in place).
HIDDEN = {
    nn.ReLU: (_relu, _relu_derivative),
    nn.Tanh: (lambda Z: np.tanh(Z, out=Z), _tanh_derivative),
    nn.Sigmoid: (lambda Z: expit(Z, out=Z), _logistic_derivative),
    nn.Identity: (lambda Z: None, lambda Z, delta: None),
}


def _softmax(Z: np.ndarray) -> None:
    shifted = Z - Z.max(axis=1)[:, np.newaxis]
    np.exp(shifted, out=Z)
    Z /= Z.sum(axis=1)[:, np.newaxis]


@dataclass
class DenseObjective:
    """scipy's ``fun`` for L-BFGS-B: the mean loss plus ``0.5 * alpha * sum(W**2) / n`` and its
    gradient, at a vector packed as scikit-learn packs it (:func:`nnexp.training.lbfgs.sklearn_layout`).

    ``logits`` holds the output layer's values before its activation at the last point evaluated
    (the training score of an iteration is read from them)."""

    X: np.ndarray  # (n, features), C order
    Y: np.ndarray  # scikit-learn's targets: (n, 1) 0/1, one-hot (n, classes), or (n, outputs) values
    widths: list[int]  # features, hidden sizes..., outputs
    hidden: type
    task: Task
    alpha: float
    averaged: bool = True  # scikit-learn >= 1.7's losses (np.average over rows); before, sums over n
    logits: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self):
        self.coef_shapes = list(zip(self.widths[:-1], self.widths[1:]))
        self.coef_ends = np.cumsum([a * b for a, b in self.coef_shapes]).tolist()
        self.intercept_ends = (self.coef_ends[-1] + np.cumsum(self.widths[1:])).tolist()

    def unpack(self, x: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The weights (fan_in, fan_out) and biases, as views of scipy's vector."""
        coef_starts = [0] + self.coef_ends[:-1]
        intercept_starts = [self.coef_ends[-1]] + self.intercept_ends[:-1]
        coefs = [x[start:end].reshape(shape) for start, end, shape in zip(coef_starts, self.coef_ends, self.coef_shapes)]
        intercepts = [x[start:end] for start, end in zip(intercept_starts, self.intercept_ends)]
        return coefs, intercepts

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        coefs, intercepts = self.unpack(x)
        activate, derivative = HIDDEN[self.hidden]
        n = self.X.shape[0]
        last = len(coefs) - 1
        activations = [self.X]
        for layer, (weights, biases) in enumerate(zip(coefs, intercepts)):
            values = activations[-1] @ weights
            values += biases
            if layer < last:
                activate(values)
            activations.append(values)
        self.logits = activations[-1].copy()
        loss = self._data_loss(activations[-1])
        squares = 0
        for weights in coefs:
            flat = weights.ravel()
            squares += np.dot(flat, flat)
        loss += (0.5 * self.alpha) * squares / n

        coef_grads, intercept_grads = [None] * len(coefs), [None] * len(coefs)
        delta = activations[-1] - self.Y  # softmax/sigmoid/identity with their canonical losses
        for layer in range(last, -1, -1):
            if layer < last:
                delta = delta @ coefs[layer + 1].T
                derivative(activations[layer + 1], delta)
            coef_grads[layer] = activations[layer].T @ delta
            coef_grads[layer] += self.alpha * coefs[layer]
            coef_grads[layer] /= n
            intercept_grads[layer] = np.sum(delta, axis=0) / n
        return loss, np.hstack([g.ravel() for g in coef_grads + intercept_grads])

    def _data_loss(self, output: np.ndarray) -> float:
        """Apply the output activation in place and return scikit-learn's loss of it: its
        clipped (binary) log loss, or half the mean squared error, as the installed version sums
        it (the line search compares these values, so their last bits count)."""
        n = output.shape[0]
        if self.task.kind == "regression":
            if self.averaged:
                return 0.5 * np.average((self.Y - output) ** 2, axis=0).mean()
            return ((self.Y - output) ** 2).mean() / 2
        if self.task.kind == "binary":
            expit(output, out=output)
        else:
            _softmax(output)
        eps = np.finfo(output.dtype).eps
        probabilities = np.clip(output, eps, 1 - eps)
        if self.task.kind == "binary":
            if self.averaged:
                return -np.average(xlogy(self.Y, probabilities) + xlogy(1 - self.Y, 1 - probabilities), axis=0).sum()
            return -(xlogy(self.Y, probabilities).sum() + xlogy(1 - self.Y, 1 - probabilities).sum()) / n
        if self.averaged:
            return -np.average(xlogy(self.Y, probabilities), axis=0).sum()
        return -xlogy(self.Y, probabilities).sum() / n


@cache
def sklearn_averages_losses() -> bool:
    """Whether the installed scikit-learn's MLP losses average over rows (1.7 and later, with
    sample weights) rather than sum and divide."""
    from importlib.metadata import version

    major, minor = (int(part) for part in version("scikit-learn").split(".")[:2])
    return (major, minor) >= (1, 7)


def dense_objective(network: nn.Module, task: Task, X: torch.Tensor, y: torch.Tensor, penalty: WeightPenalty,
                    weights: list[torch.Tensor]) -> DenseObjective | None:
    """scikit-learn's objective for ``network`` on (X, y), or None where scikit-learn has no such
    fit, or torch must compute it: not a dense network of scikit-learn's activations (dropout,
    another layer, a compiled one), an L1 penalty or one on other weights, data off the CPU or
    not float64."""
    if X.device.type != "cpu" or X.dtype != torch.float64:
        return None
    layers = list(network.children())
    if layers and type(layers[0]) is nn.Flatten and layers[0].start_dim == 1 and layers[0].end_dim == -1:
        layers = layers[1:]  # images flattened to rows, as X is reshaped below
    linears, between = layers[::2], layers[1::2]  # dense, activation, dense, ..., dense
    if not isinstance(network, nn.Sequential) or type(network).forward is not nn.Sequential.forward:
        return None  # a subclass with its own forward computes something else
    if len(layers) % 2 == 0 or penalty.l1 > 0 or any(_has_hooks(module) for module in network.modules()):
        return None
    if any(type(layer) is not nn.Linear or layer.bias is None for layer in linears):
        return None
    if any(type(layer) not in HIDDEN for layer in between) or len(set(map(type, between))) > 1:
        return None
    if sorted(map(id, weights)) != sorted(id(layer.weight) for layer in linears):
        return None
    if any(p.dtype != torch.float64 for p in network.parameters()):
        return None
    widths = [linears[0].in_features] + [layer.out_features for layer in linears]
    features = X.detach().reshape(X.shape[0], -1).numpy()
    if task.kind == "multiclass":
        targets = np.eye(widths[-1])[y.detach().long().numpy()]
    else:
        targets = y.detach().double().reshape(X.shape[0], -1).numpy()
    return DenseObjective(np.ascontiguousarray(features), np.ascontiguousarray(targets), widths,
                          type(between[0]) if between else nn.Identity, task, float(penalty.alpha), sklearn_averages_losses())


def _has_hooks(module: nn.Module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks)
