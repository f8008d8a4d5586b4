"""The batched trainer's hand-written backward pass and optimisers against autograd and torch.optim."""

from __future__ import annotations

import pytest
import torch

from nnexp.batched.objective import loss_gradient, row_losses
from nnexp.batched.optim import StackOptimizer
from nnexp.batched.stacked_mlp import ACTIVATION_PAIRS, StackedMLP, with_ones
from nnexp.models.mlp import MLP
from nnexp.models.task import Task
from nnexp.training.optimizers import SGD, Adam

TASKS = {"binary": Task("binary", 1), "multiclass": Task("multiclass", 3), "regression": Task("regression", 2)}


def targets(task: Task, shape: tuple[int, int]) -> torch.Tensor:
    if task.kind == "binary":
        return torch.randint(0, 2, shape).float()
    if task.kind == "multiclass":
        return torch.randint(0, 3, shape)
    return torch.randn(*shape, 2)


def networks(count: int, activation: str, outputs: int, hidden: list[int]) -> list[torch.nn.Module]:
    torch.manual_seed(0)
    return [MLP(input_shape=4, hidden_sizes=hidden, activation=activation, out_features=outputs) for _ in range(count)]


def reference(net: torch.nn.Module, activation: str, x: torch.Tensor, masks: list[torch.Tensor]) -> torch.Tensor:
    """The member's forward pass with autograd, dropping units with the stack's masks (scaled)."""
    layers = [layer for layer in net if isinstance(layer, torch.nn.Linear)]
    for layer, mask in zip(layers[:-1], masks):
        x = ACTIVATION_PAIRS[activation][0](layer(x)) * mask
    return layers[-1](x)


@pytest.mark.parametrize("activation", sorted(ACTIVATION_PAIRS))
@pytest.mark.parametrize("kind", sorted(TASKS))
# Layers of up to THIN_OUTPUTS units and wider ones take different products (stacked_mlp.THIN_OUTPUTS).
@pytest.mark.parametrize("hidden, dropout", [([6, 5], False), ([6], False), ([6, 5], True), ([12, 5], False), ([5, 12], True)],
                         ids=["two-layers", "one-layer", "dropout", "wide-first", "wide-second"])
def test_backward_matches_autograd_of_each_members_mean_loss(activation, kind, hidden, dropout):
    task, nets = TASKS[kind], networks(3, activation, TASKS[kind].n_outputs, hidden)
    x, y = torch.randn(3, 7, 4), targets(task, (3, 7))
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[1, 5:] = False  # member 1 has a short (padded) batch
    masks = [torch.ones(3, 7, width) for width in hidden]
    if dropout:
        masks = [torch.bernoulli(torch.full((3, 7, width), 0.7)) / 0.7 for width in hidden]
    stack = StackedMLP(nets, activation, "cpu")
    output, trace = stack.forward(with_ones(x), masks if dropout else None)
    stack.backward(loss_gradient(task, output, y, mask / mask.sum(1, keepdim=True)), trace)
    for m, net in enumerate(nets):
        rows = mask[m]
        expected = reference(net, activation, x[m][rows], [layer_mask[m][rows] for layer_mask in masks])
        # float32 sums in another order: on wide-second/identity both sides are ~1e-6 off float64
        assert torch.allclose(output[m][rows], expected, atol=1e-5)
        task.loss(expected, y[m][rows]).backward()
        layers = [layer for layer in net if isinstance(layer, torch.nn.Linear)]
        for mine, theirs in zip(stack.grad_weights, [layer.weight.grad.T for layer in layers]):
            assert torch.allclose(mine[m], theirs, atol=1e-6)
        for mine, theirs in zip(stack.grad_biases, [layer.bias.grad for layer in layers]):
            assert torch.allclose(mine[m, 0], theirs, atol=1e-6)
        assert row_losses(task, output, y)[m][rows].mean() == pytest.approx(float(task.loss(expected.detach(), y[m][rows])), rel=1e-6, abs=1e-6)


REFERENCE_OPTIMIZERS = {"adam": Adam, "adam_torch": torch.optim.Adam, "sgd": SGD, "sgd_torch": torch.optim.SGD}


@pytest.mark.parametrize(
    "kind, options",
    [("adam", {}), ("adam", {"fused": True}), ("adam_torch", {}), ("adam_torch", {"fused": True}),
     ("sgd", {"momentum": 0.9, "nesterov": True}), ("sgd", {"momentum": 0.9, "nesterov": False}), ("sgd", {"momentum": 0.0, "nesterov": False}),
     ("sgd_torch", {"momentum": 0.9, "nesterov": True}), ("sgd_torch", {"momentum": 0.0})],
)
def test_optimiser_steps_match_the_sequential_optimiser(kind, options):
    """Each batched kind makes the updates of the optimiser class a sequential run of it uses:
    nnexp's scikit-learn Adam and SGD, or torch's own."""
    nets = networks(2, "tanh", 1, [6, 5])
    lr = torch.tensor([0.003, 0.003]) if options.get("fused") else torch.tensor([0.01, 0.003])
    stack = StackedMLP(nets, "tanh", "cpu")
    momentum = torch.full((2,), float(options.get("momentum", 0.0)))
    optimizer = StackOptimizer(stack, kind, lr, momentum, nesterov=options.get("nesterov", False), fused=options.get("fused", False))
    references = [
        REFERENCE_OPTIMIZERS[kind](net.parameters(), lr=float(lr[m]), **options)
        for m, net in enumerate(nets)
    ]
    torch.manual_seed(1)
    for _ in range(4):
        stack.grad.copy_(torch.randn_like(stack.grad))
        for m, (net, reference) in enumerate(zip(nets, references)):
            layers = [layer for layer in net if isinstance(layer, torch.nn.Linear)]
            for layer, grad_W, grad_b in zip(layers, stack.grad_weights, stack.grad_biases):
                layer.weight.grad, layer.bias.grad = grad_W[m].T.contiguous(), grad_b[m, 0].clone()  # as autograd lays it out
            reference.step()
        optimizer.step()
    for m, net in enumerate(nets):
        layers = [layer for layer in net if isinstance(layer, torch.nn.Linear)]
        for layer, W in zip(layers, stack.weights):
            if options.get("fused"):  # the same kernel: bit for bit
                assert torch.equal(W[m].T, layer.weight)
            else:
                assert torch.allclose(W[m].T, layer.weight, atol=1e-7)


def test_a_member_leaving_takes_its_state_with_it():
    nets = networks(3, "relu", 1, [6, 5])
    stack = StackedMLP(nets, "relu", "cpu")
    optimizer = StackOptimizer(stack, "adam", torch.tensor([0.1, 0.2, 0.3]), torch.zeros(3))
    stack.grad.fill_(1.0)
    optimizer.step()
    before = [W[2].clone() for W in stack.weights]
    keep = torch.tensor([0, 2])
    optimizer.keep(keep)
    stack.keep(keep)
    optimizer.rebind()
    assert stack.M == 2 and optimizer.lr.tolist() == pytest.approx([0.1, 0.3])
    assert all(torch.equal(W[1], saved) for W, saved in zip(stack.weights, before))
    assert optimizer.state["exp_avg"].shape == stack.theta.shape


def test_members_on_the_same_rows_share_one_copy_of_them():
    from nnexp.batched.shared_splits import SharedSplits
    from nnexp.data.splits import TensorSplit

    fold_a = TensorSplit(torch.arange(12.0).view(6, 2), torch.arange(6))
    fold_b = TensorSplit(-torch.arange(8.0).view(4, 2), torch.arange(4))
    splits = SharedSplits([fold_a, fold_a, fold_b, fold_a], "cpu")
    assert splits.X.shape == (2, 6, 2)  # two distinct splits, padded to 6 rows
    X, y = splits.take(splits.rows(torch.tensor([[5, 0], [1, 2], [3, 0], [4, 4]])))
    assert torch.equal(X[0], fold_a.X[[5, 0]]) and torch.equal(X[2], fold_b.X[[3, 0]]) and torch.equal(y[3], fold_a.y[[4, 4]])
    assert splits.row_mask().sum(1).tolist() == [6, 6, 4, 6]


def test_trained_members_come_back_as_ordinary_networks():
    from nnexp.batched.trainer import MemberSpec, StackSpec, train_stack
    from nnexp.data.splits import FitData, TensorSplit

    nets = networks(2, "relu", 1, [6])
    data = FitData(train=TensorSplit(torch.randn(20, 4), torch.randint(0, 2, (20,)).float()))
    members = [MemberSpec(data=data, network=net, seed=0, lr=0.01, alpha=alpha) for net, alpha in zip(nets, (0.0, 1.0))]
    spec = StackSpec(TASKS["binary"], "relu", "adam", batch_size=8, max_epochs=3, monitor=None, patience=1, tol=0.0, restore_best=False)
    before = [layer.weight.clone() for layer in nets[0] if isinstance(layer, torch.nn.Linear)]
    results = train_stack(members, spec)
    assert [len(result.history) for result in results] == [3, 3]
    net = results[0].network  # trained in inference mode, it must still train and change like any network
    after = [layer.weight for layer in net if isinstance(layer, torch.nn.Linear)]
    assert not any(torch.equal(a, b) for a, b in zip(before, after))
    assert not any(p.is_inference() for p in net.parameters())
    net(torch.randn(3, 4)).sum().backward()
    torch.optim.SGD(net.parameters(), lr=0.1).step()
