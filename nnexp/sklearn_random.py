"""scikit-learn's ``random_state`` for the models it has (MLPs, linear and logistic nets).

One ``numpy.random.RandomState(seed)`` per fit, drawn from in scikit-learn's order
(``BaseMultilayerPerceptron._fit``): the Glorot-uniform weights and biases of each layer in turn
(``_init_coef``: a (fan_in, fan_out) weight matrix, then the biases), then the early-stopping
validation split (``train_test_split`` stratified on the binarised labels), then one
``sklearn.utils.shuffle`` of the previous epoch's row order per epoch (``_fit_stochastic``).
The same seed then gives scikit-learn's own starting network, split and minibatches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nnexp.sklearn_models import uses_sklearn_draws


def glorot_bound(fan_in: int, fan_out: int, activation: str) -> float:
    """scikit-learn's ``init_bound``: sqrt(6 / (fan_in + fan_out)), sqrt(2 / ...) for logistic units."""
    factor = 2.0 if activation == "logistic" else 6.0
    return float(np.sqrt(factor / (fan_in + fan_out)))


def draw_initial_parameters(random_state: np.random.RandomState, layer_units: tuple[int, ...], activation: str):
    """[(weights (fan_in, fan_out), biases (fan_out,)), ...] per layer, drawn as ``_init_coef`` draws them."""
    parameters = []
    for fan_in, fan_out in zip(layer_units, layer_units[1:]):
        bound = glorot_bound(fan_in, fan_out, activation)
        weights = random_state.uniform(-bound, bound, (fan_in, fan_out))
        biases = random_state.uniform(-bound, bound, fan_out)
        parameters.append((weights, biases))
    return parameters


@dataclass(frozen=True)
class SklearnDraws:
    """One fit's scikit-learn stream: its seed and the layer widths its initial draws cover."""

    seed: int
    layer_units: tuple[int, ...]
    activation: str

    def initial_parameters(self):
        """The network's starting weights and biases (:func:`draw_initial_parameters`)."""
        return draw_initial_parameters(np.random.RandomState(self.seed), self.layer_units, self.activation)

    def after_initialisation(self) -> np.random.RandomState:
        """The fit's generator as scikit-learn's validation split finds it: past the initial draws."""
        random_state = np.random.RandomState(self.seed)
        draw_initial_parameters(random_state, self.layer_units, self.activation)
        return random_state


def validation_rows(random_state: np.random.RandomState, y: np.ndarray, fraction: float, classification: bool):
    """(training rows, validation rows) of early stopping's split, drawn as ``_fit_stochastic``
    draws it: ``train_test_split`` stratified on the label-binarised targets (whose string form
    orders the classes, and so the draws), unstratified for regression."""
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer

    stratify = LabelBinarizer().fit_transform(y).astype(bool) if classification else None
    rows = np.arange(len(y))
    train, validation = train_test_split(rows, random_state=random_state, test_size=fraction, stratify=stratify)
    return train, validation


class SklearnOrders:
    """Each epoch's row order as ``_fit_stochastic`` draws it: the previous order, shuffled by
    ``sklearn.utils.shuffle`` with the fit's generator (so orders compose, epoch after epoch)."""

    def __init__(self, state: tuple, device=None):
        self.random_state = np.random.RandomState()
        self.random_state.set_state(state)
        self.device = device
        self.order: np.ndarray | None = None

    def draw(self, n_rows: int) -> np.ndarray:
        """The next epoch's order of ``n_rows`` rows, as a numpy array."""
        if self.order is None:
            self.order = np.arange(n_rows, dtype=int)
        permutation = np.arange(n_rows)
        self.random_state.shuffle(permutation)
        self.order = self.order[permutation]
        return self.order

    def __call__(self, n_rows: int) -> torch.Tensor:
        return torch.as_tensor(self.draw(n_rows), device=self.device)


class TorchOrders:
    """``init=torch``'s (and the CNNs') row orders: ``randperm`` from a generator seeded with the seed."""

    def __init__(self, seed: int, device=None):
        self.generator = torch.Generator(device=device or "cpu").manual_seed(int(seed))
        self.device = device

    def __call__(self, n_rows: int) -> torch.Tensor:
        return torch.randperm(n_rows, generator=self.generator, device=self.device)


def epoch_orders(orders_state: tuple | None, seed: int, device=None):
    """The fit's minibatch orders: scikit-learn's when its data carries a generator state, else torch's."""
    return SklearnOrders(orders_state, device) if orders_state is not None else TorchOrders(seed, device)


def draws_for(cfg, bundle) -> SklearnDraws | None:
    """scikit-learn's stream for a config that uses it (:func:`uses_sklearn_draws`), else None."""
    model = cfg.model
    if not uses_sklearn_draws(model):
        return None
    units = (int(np.prod(bundle.input_shape)), *(int(size) for size in model.get("hidden_sizes", [])), bundle.n_outputs)
    return SklearnDraws(int(cfg.seed), units, str(model.get("activation", "relu")))


def trains_in_float64(cfg) -> bool:
    """Whether a fit keeps its features and weights in float64 from the start: scikit-learn's
    L-BFGS (``optim.float64``) with scikit-learn's draws, so the float64 weights drawn are the ones it starts from."""
    optim = cfg.optim
    return optim.get("_target_") == "nnexp.training.lbfgs.LBFGS" and bool(optim.get("float64", True))


def fit_data_options(cfg, bundle) -> dict:
    """``make_fit_data``'s ``draws`` and ``float64`` for a config (see :func:`draws_for`)."""
    draws = draws_for(cfg, bundle)
    return {"draws": draws, "float64": draws is not None and trains_in_float64(cfg)}
