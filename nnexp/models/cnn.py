"""Convolutional nets from config: conv blocks, flatten, a dense head, then the task output."""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

from torch import nn

from nnexp.errors import ConfigError
from nnexp.models.activations import ACTIVATIONS
from nnexp.models.mlp import dense_layers, glorot_init, make_activation

BLOCK_KEYS = {"filters", "kernel", "stride", "padding", "activation", "batch_norm", "pool"}


def conv_output(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class CNN(nn.Sequential):
    """``blocks`` is a list of dicts: ``filters``, ``kernel`` (3), ``stride`` (1), ``padding`` (0),
    ``activation`` (relu), ``batch_norm`` (false), ``pool`` (max-pool size; 1 or 0 for none).

    The geometry is checked here, so a kernel or pool larger than its input is a config error
    naming the block, not a shape error in the middle of training.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        out_features: int,
        blocks: Sequence[dict],
        hidden_sizes: Sequence[int] = (64,),
        activation: str = "relu",
        dropout: float = 0.0,
    ):
        if len(input_shape) not in (2, 3):
            raise ConfigError("model", "cnn", f"image data of shape (channels, height, width); this data has shape {tuple(input_shape)}: use model=mlp")
        channels, height, width = (1, *input_shape) if len(input_shape) == 2 else input_shape
        layers: list[tuple[str, nn.Module]] = []
        for number, block in enumerate(blocks, start=1):
            key = f"model.blocks.{number - 1}"
            unknown = set(block) - BLOCK_KEYS
            if unknown:
                raise ConfigError(f"{key}.{sorted(unknown)[0]}", block[sorted(unknown)[0]], f"one of the block keys {', '.join(sorted(BLOCK_KEYS))}")
            filters, kernel = int(block["filters"]), int(block.get("kernel", 3))
            stride, padding, pool = int(block.get("stride", 1)), int(block.get("padding", 0)), int(block.get("pool", 0) or 1)
            act = block.get("activation", activation)
            if filters < 1:
                raise ConfigError(f"{key}.filters", filters, "a whole number >= 1")
            if act not in ACTIVATIONS:
                raise ConfigError(f"{key}.activation", act, f"one of {', '.join(ACTIVATIONS)}")
            if kernel > min(height, width) + 2 * padding:
                raise ConfigError(
                    f"{key}.kernel", kernel,
                    f"at most {min(height, width) + 2 * padding}: this block's input is {height}x{width} with padding {padding}",
                )
            layers.append((f"conv{number}", nn.Conv2d(channels, filters, kernel, stride=stride, padding=padding)))
            if block.get("batch_norm", False):
                layers.append((f"batchnorm{number}", nn.BatchNorm2d(filters)))
            layers.append((f"{act}{number}", make_activation(act)))
            height, width = conv_output(height, kernel, stride, padding), conv_output(width, kernel, stride, padding)
            if pool > 1:
                if pool > min(height, width):
                    raise ConfigError(f"{key}.pool", pool, f"at most {min(height, width)}: the block's feature maps are {height}x{width}")
                layers.append((f"pool{number}", nn.MaxPool2d(pool)))
                height, width = height // pool, width // pool
            channels = filters
        head = dense_layers(channels * height * width, hidden_sizes, activation, dropout, out_features)
        head = [(name if name == "out" else f"head_{name}", layer) for name, layer in head]
        super().__init__(OrderedDict([*layers, ("flatten", nn.Flatten()), *head]))
        glorot_init(self, activation)


def is_convolutional(network: nn.Module) -> bool:
    """Whether the network has conv layers (and so benefits from channels_last and bf16)."""
    return any(isinstance(layer, nn.Conv2d) for layer in network.modules())
