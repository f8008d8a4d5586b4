"""Multi-layer perceptrons: ``hidden_sizes=[]`` is linear or logistic regression."""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import numpy as np
import torch
from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "logistic": nn.Sigmoid,
    "identity": nn.Identity,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "silu": nn.SiLU,
}


def make_activation(name: str) -> nn.Module:
    """The activation layer called ``name`` (relu, tanh, logistic, identity, gelu, elu, leaky_relu, silu)."""
    return ACTIVATIONS[name]()


def glorot_init(module: nn.Module, activation: str) -> None:
    """Glorot-uniform weights and zero biases, as Keras does; scikit-learn uses the same weight
    bound, narrowed for logistic units."""
    gain = 1.0 / 3**0.5 if activation == "logistic" else 1.0
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(layer.weight, gain=gain)
            if layer.bias is not None:
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
    ):
        width = int(np.prod(input_shape))
        layers = [("flatten", nn.Flatten())] + dense_layers(width, hidden_sizes, activation, dropout, out_features)
        super().__init__(OrderedDict(layers))
        glorot_init(self, activation)


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
        network(torch.zeros(1, *input_shape, device=device))
    finally:
        network.train(training)
        for hook in hooks:
            hook.remove()
    return rows
