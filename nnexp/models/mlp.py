"""Multi-layer perceptrons: ``hidden_sizes=[]`` is linear or logistic regression."""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import numpy as np
import torch
from torch import nn

from nnexp.models.activations import ACTIVATIONS


def make_activation(name: str) -> nn.Module:
    """The activation layer called ``name`` (relu, tanh, logistic, identity, gelu, elu, leaky_relu, silu)."""
    return getattr(nn, ACTIVATIONS[name])()


BIAS_INITS = ("glorot", "zeros")
INITS = ("sklearn", "torch")


def glorot_init(module: nn.Module, activation: str, bias: str = "zeros") -> None:
    """Glorot-uniform weights, narrowed for logistic units as scikit-learn narrows them.

    ``bias="glorot"`` draws each layer's biases from its weights' bound, as scikit-learn's MLP
    does (``_init_coef``); ``"zeros"`` is Keras's default.
    """
    if bias not in BIAS_INITS:
        raise ValueError(f"bias_init must be one of {', '.join(BIAS_INITS)}, got {bias!r}")
    gain = 1.0 / 3**0.5 if activation == "logistic" else 1.0
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(layer.weight, gain=gain)
            if layer.bias is None:
                continue
            if bias == "glorot":
                receptive_field = layer.weight[0, 0].numel()  # 1 for a dense layer
                fan_in, fan_out = layer.weight.shape[1] * receptive_field, layer.weight.shape[0] * receptive_field
                bound = gain * (6.0 / (fan_in + fan_out)) ** 0.5
                nn.init.uniform_(layer.bias, -bound, bound)
            else:
                nn.init.zeros_(layer.bias)


def dense_layers(width: int, hidden_sizes: Sequence[int], activation: str, dropout: float, out_features: int):
    """Named dense layers: dense1, <activation>1, dropout1, ..., out."""
    layers: list[tuple[str, nn.Module]] = []
    for number, size in enumerate(hidden_sizes, start=1):
        layers += [(f"dense{number}", nn.Linear(width, int(size))), (f"{activation}{number}", make_activation(activation))]
        if dropout > 0:
            layers.append((f"dropout{number}", nn.Dropout(dropout)))
        width = int(size)
    layers.append(("out", nn.Linear(width, out_features)))
    return layers


class MLP(nn.Sequential):
    """Flatten, then ``hidden_sizes`` dense layers with ``activation`` and optional dropout, then the output layer.

    Initialised as scikit-learn's MLP: Glorot-uniform weights and biases (``bias_init=zeros``: Keras's zero biases).
    ``init=sklearn`` (the default): :func:`load_initial_parameters` then gives it the ones drawn from
    scikit-learn's ``RandomState(seed)``, as ``MLPClassifier(random_state=seed)`` does (whether it
    does is ``nnexp.sklearn_random.uses_sklearn_draws``); ``init=torch``: torch's seeded generator,
    as drawn here.

    ``input_shape`` is the number of features or the shape of one example (images are flattened).
    The output layer is linear; the task applies sigmoid or softmax in its loss and predictions.
    """

    def __init__(
        self,
        input_shape: int | Sequence[int],
        out_features: int,
        hidden_sizes: Sequence[int] = (100,),
        activation: str = "relu",
        dropout: float = 0.0,
        bias_init: str = "glorot",
        init: str = "sklearn",
    ):
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
        if init == "sklearn" and bias_init != "glorot":
            raise ValueError("init=sklearn draws the biases as scikit-learn does: set bias_init=glorot, or init=torch")
        self.activation = activation
        width = int(np.prod(input_shape))
        layers = [("flatten", nn.Flatten())] + dense_layers(width, hidden_sizes, activation, dropout, out_features)
        super().__init__(OrderedDict(layers))
        glorot_init(self, activation, bias_init)


def load_initial_parameters(network: nn.Module, draws, dtype: torch.dtype = torch.float32) -> None:
    """Give an MLP scikit-learn's starting weights and biases: ``draws`` is the fit's
    :class:`~nnexp.sklearn_random.SklearnDraws` (None: the network keeps the weights it was built
    with). In ``dtype``: float64 keeps the draws exact."""
    if draws is None:
        return
    linears = [layer for layer in network.modules() if isinstance(layer, nn.Linear)]
    network.to(dtype)
    with torch.no_grad():
        for layer, (weights, biases) in zip(linears, draws.initial_parameters(), strict=True):
            layer.weight.copy_(torch.from_numpy(weights.T.copy()))
            layer.bias.copy_(torch.from_numpy(biases))


def parameter_count(network: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in network.parameters() if p.requires_grad)


@torch.no_grad()
def layer_summary(network: nn.Module, input_shape: Sequence[int]) -> list[dict]:
    """One row per leaf layer: name, type, output shape (without the batch) and parameter count."""
    rows: list[dict] = []
    hooks = []
    for name, layer in network.named_modules():
        if next(layer.children(), None) is not None:
            continue

        def record(layer, _inputs, output, name=name):
            rows.append(
                {
                    "layer": name,
                    "type": type(layer).__name__,
                    "output_shape": list(output.shape[1:]),
                    "params": sum(p.numel() for p in layer.parameters()),
                }
            )

        hooks.append(layer.register_forward_hook(record))
    training = network.training
    network.eval()
    try:
        parameter = next(network.parameters(), None)
        device = parameter.device if parameter is not None else "cpu"
        dtype = parameter.dtype if parameter is not None else torch.float32
        network(torch.zeros(1, *input_shape, device=device, dtype=dtype))
    finally:
        network.train(training)
        for hook in hooks:
            hook.remove()
    return rows
