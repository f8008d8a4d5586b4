"""Multi-layer perceptrons: ``hidden_sizes=[]`` is linear or logistic regression."""

from __future__ import annotations

from typing import Sequence

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


class MLP(nn.Sequential):
    """Flatten, then ``hidden_sizes`` dense layers with ``activation`` and optional dropout, then the output layer.

    The output layer is linear; the task applies sigmoid or softmax in its loss and predictions.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_sizes: Sequence[int] = (100,),
        activation: str = "relu",
        dropout: float = 0.0,
    ):
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for size in hidden_sizes:
            layers += [nn.Linear(width, int(size)), make_activation(activation)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = int(size)
        layers.append(nn.Linear(width, out_features))
        super().__init__(*layers)
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
