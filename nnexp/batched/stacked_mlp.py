"""M MLPs of one shape as one flat parameter buffer, with a hand-written forward and backward pass.

Every layer has a weight block (M, in, out) and a bias block (M, 1, out); the blocks are
contiguous views into one flat tensor (and the gradients into another), so an optimiser step is
a handful of element-wise ops over all members at once. The backward pass is the textbook MLP
backward (as scikit-learn's ``_backprop``) with torch's own activation-derivative kernels, so a
step needs no autograd graph. Members leave the stack (``keep``) when they stop training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nnexp.models.mlp import ACTIVATIONS

aten = torch.ops.aten

# name -> (forward, derivative(grad, pre_activation, activation)): the kernels autograd itself uses.
ACTIVATION_PAIRS = {
    "relu": (torch.relu, lambda g, z, a: aten.threshold_backward(g, a, 0)),
    "tanh": (torch.tanh, lambda g, z, a: aten.tanh_backward(g, a)),
    "logistic": (torch.sigmoid, lambda g, z, a: aten.sigmoid_backward(g, a)),
    "identity": (lambda z: z, lambda g, z, a: g),
    "gelu": (F.gelu, lambda g, z, a: aten.gelu_backward(g, z)),
    "elu": (F.elu, lambda g, z, a: aten.elu_backward(g, 1.0, 1, 1, True, a)),
    "leaky_relu": (F.leaky_relu, lambda g, z, a: aten.leaky_relu_backward(g, z, 0.01, False)),
    "silu": (F.silu, lambda g, z, a: aten.silu_backward(g, z)),
}
assert set(ACTIVATION_PAIRS) == set(ACTIVATIONS)
# Activations whose derivative reads only their output overwrite the pre-activation in place:
# one fresh (M, B, width) buffer less per layer and step.
IN_PLACE = {"relu": torch.relu_, "tanh": torch.tanh_, "logistic": torch.sigmoid_}

# A weight gradient (in, out) with out <= THIN_OUTPUTS is computed as its transpose: batched
# matmuls into a thin column ran 3x slower than into a thin row here (35 x (100, 1): 104 vs 31 us).
THIN_OUTPUTS = 4


@dataclass
class Trace:
    """A forward pass's saved tensors: each layer's input (after dropout), each hidden layer's
    pre-activation (the activation itself where it was computed in place) and activation
    (before dropout), and the dropout masks."""

    inputs: list[torch.Tensor]
    pre_activations: list[torch.Tensor]
    activations: list[torch.Tensor]
    masks: list[torch.Tensor] | None


def linear_layers(network: torch.nn.Module) -> list[torch.nn.Linear]:
    return [layer for layer in network.modules() if isinstance(layer, torch.nn.Linear)]


class StackedMLP:
    """The stacked weights of M same-shaped MLPs; ``theta`` and ``grad`` are flat buffers."""

    def __init__(self, networks: list[torch.nn.Module], activation: str, device):
        layers = [linear_layers(net) for net in networks]
        self.shapes = [(layer.in_features, layer.out_features) for layer in layers[0]]
        self.activation, self.derivative = ACTIVATION_PAIRS[activation]
        self.activation = IN_PLACE.get(activation, self.activation)
        blocks = []
        for i in range(len(self.shapes)):
            blocks.append(torch.stack([net[i].weight.detach().T for net in layers]).reshape(-1))
            blocks.append(torch.stack([net[i].bias.detach() for net in layers]).reshape(-1))
        self._bind(torch.cat(blocks).to(device), len(networks))

    def _block_sizes(self) -> list[int]:
        return [size for n_in, n_out in self.shapes for size in (n_in * n_out, n_out)]

    def _bind(self, theta: torch.Tensor, members: int) -> None:
        self.M, self.theta, self.grad = members, theta, torch.zeros_like(theta)
        self.weights, self.biases = self._views(theta)
        self.grad_weights, self.grad_biases = self._views(self.grad)
        device = theta.device
        member = torch.arange(members, device=device)
        # Per element of theta: its member, and whether it is a weight (penalised) or a bias.
        self.member_of = torch.cat([member.repeat_interleave(size) for size in self._block_sizes()])
        self.is_weight = torch.cat([
            torch.full((members * size,), i % 2 == 0, device=device) for i, size in enumerate(self._block_sizes())
        ])

    def per_element(self, values: torch.Tensor) -> torch.Tensor:
        """Broadcast a per-member vector (M,) to theta's layout."""
        return values.index_select(0, self.member_of)

    def weight_norms(self, order: int) -> torch.Tensor:
        """Each member's sum over its weight matrices (not biases) of ||W||_1 or ||W||_2^2: (M,)."""
        total = [(W.square() if order == 2 else W.abs()).sum((1, 2)) for W in self.weights]
        return sum(total[1:], total[0])

    def take(self, flat: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Members ``keep`` of a flat buffer laid out like theta."""
        sizes = [self.M * size for size in self._block_sizes()]
        return torch.cat([block.view(self.M, -1)[keep].reshape(-1) for block in flat.split(sizes)])

    def keep(self, keep: torch.Tensor) -> None:
        """Drop every member not in ``keep`` (indices into the current members)."""
        self._bind(self.take(self.theta, keep), len(keep))

    def forward(self, x: torch.Tensor, masks: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, Trace]:
        """Outputs (M, B, out) and what the backward pass needs. ``masks``: each hidden layer's
        dropout mask (M, B, width), already scaled by 1/(1-p); None in evaluation."""
        trace = Trace([x], [], [], masks)
        last = len(self.shapes) - 1
        for i, (W, b) in enumerate(zip(self.weights, self.biases)):
            z = torch.baddbmm(b, trace.inputs[-1], W)
            if i == last:
                return z, trace
            a = self.activation(z)
            trace.pre_activations.append(z)
            trace.activations.append(a)
            trace.inputs.append(a if masks is None else a * masks[i])
        raise AssertionError("unreachable: the output layer returns")

    def _views(self, theta: torch.Tensor):
        params = theta.split([self.M * size for size in self._block_sizes()])
        weights = [params[2 * i].view(self.M, n_in, n_out) for i, (n_in, n_out) in enumerate(self.shapes)]
        biases = [params[2 * i + 1].view(self.M, 1, n_out) for i, (_, n_out) in enumerate(self.shapes)]
        return weights, biases

    def backward(self, grad_output: torch.Tensor, trace: Trace) -> None:
        """Write d(sum of member losses)/d(theta) into ``grad``; ``grad_output`` is dL/d(output).

        With one output (binary or single-target regression) the last hidden layer's gradient
        is an outer product, (dL/d output) times the output weights. It is kept factored: the
        activation derivative takes the (B, 1) column broadcast, and the output weights scale
        the layer's small (in, width) products afterwards, so the (M, B, width) product is never
        built. Same sums in another order: equal to the textbook pass to float rounding.
        """
        g, scale = grad_output, None  # the current layer's true gradient is g * scale (M, 1, width)
        for i in reversed(range(len(self.shapes))):
            if g.shape[-1] == 1:  # the product's transpose, a thin row block, is 3x faster; same memory
                torch.bmm(g.transpose(1, 2), trace.inputs[i], out=self.grad_weights[i].view(self.M, 1, -1))
            elif g.shape[-1] <= THIN_OUTPUTS:
                self.grad_weights[i].copy_(torch.bmm(g.transpose(1, 2), trace.inputs[i]).transpose(1, 2))
            else:
                torch.bmm(trace.inputs[i].transpose(1, 2), g, out=self.grad_weights[i])
            torch.sum(g, dim=1, keepdim=True, out=self.grad_biases[i])
            if scale is not None:
                self.grad_weights[i].mul_(scale)
                self.grad_biases[i].mul_(scale)
            if i == 0:
                return
            weights_t = self.weights[i].transpose(1, 2)  # (M, out, in)
            if scale is not None:
                g, scale = torch.bmm(g, weights_t * scale.transpose(1, 2)), None
            elif g.shape[-1] == 1:
                g, scale = g.expand(-1, -1, weights_t.shape[-1]), weights_t
            else:
                g = torch.bmm(g, weights_t)
            if trace.masks is not None:
                g = g * trace.masks[i - 1]
            g = self.derivative(g, trace.pre_activations[i - 1], trace.activations[i - 1])

    def export(self, m: int, network: torch.nn.Module, theta: torch.Tensor | None = None) -> torch.nn.Module:
        """Member m's weights (from ``theta``, default the current ones) loaded into its own network."""
        weights, biases = (self.weights, self.biases) if theta is None else self._views(theta)
        with torch.no_grad():
            for layer, W, b in zip(linear_layers(network), weights, biases):
                layer.weight.copy_(W[m].T)
                layer.bias.copy_(b[m, 0])
        return network
