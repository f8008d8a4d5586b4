"""M MLPs of one shape as one flat parameter buffer, with a hand-written forward and backward pass.

Every layer has a weight block (M, in, out) and a bias block (M, 1, out), except the first: one
block (M, in + 1, out) with its bias as the last row. The network's inputs carry a ones column
last, so the first (widest) layer is one batched matmul forward, with no bias broadcast
(35 x (200, 31) x (31, 100): 185 us against 255 us with ``baddbmm``), and one backward, weight
and bias gradients together. (Hidden activations get no ones column: writing them into a
strided buffer cost more than the broadcast saves.) The blocks are contiguous views into one
flat tensor (and the gradients into another), so an optimiser step is a handful of element-wise
ops over all members.
The backward pass is the textbook MLP backward (as scikit-learn's ``_backprop``) with torch's own
activation-derivative kernels, so a step needs no autograd graph. Members leave the stack
(``keep``) when they stop training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nnexp.models.activations import ACTIVATIONS

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
# Their derivatives overwrite the activation, dead once its layer's weight gradient is taken:
# the step's working set stays 2.8 MB smaller (35 x 200 x 100), 10% off the backward pass here.
IN_PLACE_DERIVATIVES = {
    "relu": lambda g, z, a: aten.threshold_backward.grad_input(g, a, 0, grad_input=a),
    "tanh": lambda g, z, a: aten.tanh_backward.grad_input(g, a, grad_input=a),
    "logistic": lambda g, z, a: aten.sigmoid_backward.grad_input(g, a, grad_input=a),
}

# A product with a thin (M, ..., out <= THIN_OUTPUTS) result is computed as its transpose, a thin
# row block: batched matmuls into a thin column ran 1.2-12x slower here, float32 and float64, 1 and
# 2 threads. The output layer's forward, 40 x (200, 100) x (100, 1): 530 against 101 us; its
# weight gradient: 8.7x. Up to 10 outputs it won in every case measured; past 10 it scatters
# by dtype and shape (0.7-2.4x).
THIN_OUTPUTS = 10


def affine(inputs: torch.Tensor, weights: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``inputs @ weights (+ bias)`` per member: (M, B, out). A thin result (out <= THIN_OUTPUTS)
    is the transpose of an (M, out, B) product, and comes back as a strided view of it."""
    if weights.shape[-1] > THIN_OUTPUTS:
        return torch.bmm(inputs, weights) if bias is None else torch.baddbmm(bias, inputs, weights)
    product_t = (torch.bmm(weights.transpose(1, 2), inputs.transpose(1, 2)) if bias is None
                 else torch.baddbmm(bias.transpose(1, 2), weights.transpose(1, 2), inputs.transpose(1, 2)))
    return product_t.transpose(1, 2)


def with_ones(x: torch.Tensor) -> torch.Tensor:
    """Inputs (M, B, features) with the ones column a stack's layers expect: (M, B, features + 1)."""
    return torch.cat([x, x.new_ones(*x.shape[:-1], 1)], dim=-1)


@dataclass
class Trace:
    """A forward pass's saved tensors: each layer's input (after dropout; the first with its
    ones column), each hidden layer's pre-activation (the activation itself where it was
    computed in place) and activation (before dropout), and the dropout masks."""

    inputs: list[torch.Tensor]
    pre_activations: list[torch.Tensor]
    activations: list[torch.Tensor]
    masks: list[torch.Tensor] | None


def linear_layers(network: torch.nn.Module) -> list[torch.nn.Linear]:
    return [layer for layer in network.modules() if isinstance(layer, torch.nn.Linear)]


class StackedMLP:
    """The stacked weights of M same-shaped MLPs; ``theta`` and ``grad`` are flat buffers (in
    ``dtype``, default the networks' own)."""

    def __init__(self, networks: list[torch.nn.Module], activation: str, device, dtype: torch.dtype | None = None):
        layers = [linear_layers(net) for net in networks]
        self.shapes = [(layer.in_features, layer.out_features) for layer in layers[0]]
        self.activation, self.derivative = ACTIVATION_PAIRS[activation]
        self.activation = IN_PLACE.get(activation, self.activation)
        self.derivative = IN_PLACE_DERIVATIVES.get(activation, self.derivative)
        blocks = []
        for i in range(len(self.shapes)):
            weights = torch.stack([net[i].weight.detach().T for net in layers])
            biases = torch.stack([net[i].bias.detach() for net in layers])[:, None]
            blocks.extend([torch.cat([weights, biases], dim=1)] if i == 0 else [weights, biases])
        self._bind(torch.cat([block.reshape(-1) for block in blocks]).to(device, dtype), len(networks))

    def _block_sizes(self) -> list[int]:
        (n_in, n_out), *later = self.shapes
        return [(n_in + 1) * n_out, *(size for n_in, n_out in later for size in (n_in * n_out, n_out))]

    def _bind(self, theta: torch.Tensor, members: int) -> None:
        self.M, self.theta, self.grad = members, theta, torch.zeros_like(theta)
        self.first_block, self.weights, self.biases = self._views(theta)
        self.grad_first_block, self.grad_weights, self.grad_biases = self._views(self.grad)
        device = theta.device
        member = torch.arange(members, device=device)
        # Per element of theta: its member, and whether it is a weight (penalised) or a bias.
        self.member_of = torch.cat([member.repeat_interleave(size) for size in self._block_sizes()])
        (n_in, n_out), *later = self.shapes
        self.is_weight = torch.cat([
            (torch.arange(n_in + 1, device=device) < n_in).repeat_interleave(n_out).repeat(members),
            *(torch.full((members * size,), is_weight, device=device)
              for n_in, n_out in later for size, is_weight in ((n_in * n_out, True), (n_out, False))),
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

    def member_rows(self, flat: torch.Tensor) -> torch.Tensor:
        """A flat buffer laid out like theta as one row per member: (M, parameters per member)."""
        sizes = [self.M * size for size in self._block_sizes()]
        return torch.cat([block.view(self.M, -1) for block in flat.split(sizes)], dim=1)

    def load_member_rows(self, rows: torch.Tensor) -> None:
        """Set theta from one row per member (the layout of :meth:`member_rows`)."""
        sizes = self._block_sizes()
        for block, part in zip(self.theta.split([self.M * size for size in sizes]), rows.split(sizes, dim=1)):
            block.view(self.M, -1).copy_(part)

    def keep(self, keep: torch.Tensor) -> None:
        """Drop every member not in ``keep`` (indices into the current members)."""
        self._bind(self.take(self.theta, keep), len(keep))

    def forward(self, x: torch.Tensor, masks: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, Trace]:
        """Outputs (M, B, out) and what the backward pass needs. ``x`` (M, B, in + 1) carries a
        ones column last (:func:`with_ones`); ``masks``: each hidden layer's dropout mask
        (M, B, width), already scaled by 1/(1-p); None in evaluation."""
        trace = Trace([x], [], [], masks)
        last = len(self.shapes) - 1
        for i in range(len(self.shapes)):
            if i == 0:  # the inputs' ones column picks up the bias row
                z = affine(x, self.first_block)
            else:  # an activation has no ones column: appending one costs more than the bias broadcast
                z = affine(trace.inputs[-1], self.weights[i], self.biases[i])
            if i == last:
                return z, trace
            a = self.activation(z)
            trace.pre_activations.append(z)
            trace.activations.append(a)
            trace.inputs.append(a if masks is None else a * masks[i])
        raise AssertionError("unreachable: the output layer returns")

    def _views(self, theta: torch.Tensor, members: int | None = None) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """The first layer's block, and every layer's weights (M, in, out) and biases (M, 1, out)
        of ``theta``, a buffer of ``members`` members (default: the stack's)."""
        M = self.M if members is None else members
        parts = iter(theta.split([M * size for size in self._block_sizes()]))
        (n_in, n_out), *later = self.shapes
        first = next(parts).view(M, n_in + 1, n_out)
        weights, biases = [first[:, :-1]], [first[:, -1:]]
        for n_in, n_out in later:
            weights.append(next(parts).view(M, n_in, n_out))
            biases.append(next(parts).view(M, 1, n_out))
        return first, weights, biases

    def backward(self, grad_output: torch.Tensor, trace: Trace) -> None:
        """Write d(sum of member losses)/d(theta) into ``grad``; ``grad_output`` is dL/d(output).
        It uses ``trace`` up: activations computed in place are overwritten by their gradients.

        The first layer's weight and bias gradients are one product of its input (ones column
        included) and its output gradient. With one output (binary or single-target regression) the last
        hidden layer's gradient is an outer product, (dL/d output) times the output weights. It
        is kept factored: the activation derivative takes the (B, 1) column broadcast, and the
        output weights scale the layer's small (in + 1, width) product afterwards, so the
        (M, B, width) product is never built. Same sums in another order: equal to the textbook
        pass to float rounding.
        """
        g, scale = grad_output, None  # the current layer's true gradient is g * scale (M, 1, width)
        for i in reversed(range(len(self.shapes))):
            if i == 0:  # input with its ones column: weight and bias gradients in one product
                self._product(g, trace.inputs[0], self.grad_first_block)
            else:
                self._product(g, trace.inputs[i], self.grad_weights[i])
                torch.sum(g, dim=1, keepdim=True, out=self.grad_biases[i])
            if scale is not None:
                for grad in [self.grad_first_block] if i == 0 else [self.grad_weights[i], self.grad_biases[i]]:
                    grad.mul_(scale)
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

    def _product(self, g: torch.Tensor, inputs: torch.Tensor, out: torch.Tensor) -> None:
        """inputs^T g per member, (M, in, out), into ``out`` (contiguous)."""
        if g.shape[-1] == 1:  # the product's transpose, a thin row block, is 3x faster; same memory
            torch.bmm(g.transpose(1, 2), inputs, out=out.view(self.M, 1, -1))
        elif g.shape[-1] <= THIN_OUTPUTS:
            out.copy_(torch.bmm(g.transpose(1, 2), inputs).transpose(1, 2))
        else:
            torch.bmm(inputs.transpose(1, 2), g, out=out)

    def export(self, m: int, network: torch.nn.Module, theta: torch.Tensor | None = None,
               members: int | None = None) -> torch.nn.Module:
        """Member m's weights (from ``theta``, a buffer of ``members`` members; default the current
        weights) loaded into its own network. One member's row of :meth:`member_rows` is such a
        buffer with ``members=1``."""
        _, weights, biases = (None, self.weights, self.biases) if theta is None else self._views(theta, members)
        with torch.no_grad():
            for layer, W, b in zip(linear_layers(network), weights, biases):
                layer.weight.copy_(W[m].T)
                layer.bias.copy_(b[m, 0])
        return network
