"""alpha and l1 follow scikit-learn's scaling; early stopping stops and restores the best weights."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from nnexp.models.mlp import MLP
from nnexp.training.penalty import WeightPenalty, penalized_weights


def penalty_gradients(penalty: WeightPenalty, n_batch: int):
    torch.manual_seed(0)
    net = MLP(3, 2, hidden_sizes=[4])
    weights = penalized_weights(net)
    penalty(weights, n_batch).backward()
    return net, weights


def test_l2_gradient_is_alpha_times_weight_over_batch():
    net, weights = penalty_gradients(WeightPenalty(alpha=0.5, l1=0.0), n_batch=10)
    for weight in weights:
        assert torch.allclose(weight.grad, 0.5 * weight.detach() / 10)
    biases = [p for name, p in net.named_parameters() if name.endswith("bias")]
    assert biases and all(b.grad is None for b in biases)  # biases are not penalised


def test_l1_gradient_is_l1_times_sign_over_batch():
    _, weights = penalty_gradients(WeightPenalty(alpha=0.0, l1=0.3), n_batch=4)
    for weight in weights:
        assert torch.allclose(weight.grad, 0.3 * torch.sign(weight.detach()) / 4)


def test_penalty_value_matches_formula():
    torch.manual_seed(0)
    weights = [torch.randn(3, 2), torch.randn(2, 5)]
    value = WeightPenalty(alpha=2.0, l1=0.1)(weights, n_batch=8)
    squares = sum(float((w**2).sum()) for w in weights)
    absolutes = sum(float(w.abs().sum()) for w in weights)
    assert float(value) == pytest.approx(0.5 * 2.0 * squares / 8 + 0.1 * absolutes / 8, rel=1e-6)


@pytest.mark.parametrize("key", ["regularization.alpha", "regularization.l1"])
def test_stronger_penalty_shrinks_trained_weights(key, run_nnexp, monkeypatch):
    import nnexp.fit as runner

    built = []
    original = runner.build_network
    monkeypatch.setattr(runner, "build_network", lambda *args: built.append(original(*args)) or built[-1])
    for strength in (0.0, 5.0):
        run_nnexp("data=moons", "optim=lbfgs", "optim.max_iter=40", f"{key}={strength}")
    unpenalised, penalised = (
        sum(float(w.detach().abs().sum()) for w in penalized_weights(net)) for net in built
    )
    assert penalised < 0.7 * unpenalised


def test_early_stopping_stops_and_restores_best_weights(run_nnexp):
    metrics = run_nnexp(
        "data=breast_cancer", "stopping=early_stopping", "stopping.patience=3", "optim.lr=0.05",
        "trainer.max_epochs=300", fast=False,
    )
    assert metrics["stop_reason"] == "early_stopped"
    assert metrics["epochs"] < 300
    history = list(csv.DictReader((Path(metrics["run_dir"]) / "history.csv").open()))
    best = max(float(row["val_score"]) for row in history)
    last = float(history[-1]["val_score"])
    # The final weights are the best epoch's, so the final validation score is the best one.
    assert metrics["val_score"] == pytest.approx(best, abs=1e-6)
    assert len(history) == metrics["epochs"]
    assert best >= last


def test_convergence_rule_stops_on_flat_training_loss(run_nnexp):
    metrics = run_nnexp("data=iris", "model=logistic", "optim=lbfgs", "trainer.max_epochs=100", fast=False)
    assert metrics["stop_reason"] == "converged"
    assert metrics["epochs"] < 100


def test_dropout_layers_are_built_and_inactive_in_eval():
    net = MLP(5, 1, hidden_sizes=[8, 8], dropout=0.5)
    assert sum(isinstance(layer, torch.nn.Dropout) for layer in net) == 2
    net.eval()
    x = torch.randn(4, 5)
    assert torch.equal(net(x), net(x))


@pytest.mark.parametrize("alpha,l1", [(0.5, 0.0), (0.0, 0.3), (0.2, 0.1)])
def test_fused_penalty_gradient_matches_autograd(alpha, l1):
    penalty = WeightPenalty(alpha=alpha, l1=l1)
    _, by_autograd = penalty_gradients(penalty, n_batch=6)
    torch.manual_seed(0)
    net = MLP(3, 2, hidden_sizes=[4])
    weights = penalized_weights(net)
    for weight in weights:
        weight.grad = torch.zeros_like(weight)
    penalty.add_gradients(weights, n_batch=6)
    for fused, reference in zip(weights, by_autograd):
        assert torch.allclose(fused.grad, reference.grad)


def test_reported_training_loss_includes_the_penalty(run_nnexp):
    plain = run_nnexp("data=moons", "stopping=none", "regularization.alpha=0")
    penalised = run_nnexp("data=moons", "stopping=none", "regularization.alpha=50")
    history = list(csv.DictReader((Path(penalised["run_dir"]) / "history.csv").open()))
    # With a large alpha the objective (loss + penalty) exceeds the pure data loss.
    assert float(history[-1]["train_loss"]) > penalised["train_loss"] + 0.01
    assert plain["status"] == penalised["status"] == "ok"
