"""nnexp against scikit-learn's own MLP code, from the same initial weights on the same rows.

nnexp builds and seeds its network; its weights are copied into a scikit-learn MLP, which then
trains on nnexp's scaled training rows, full batch (so no shuffling order is involved). The
per-epoch training losses must equal scikit-learn's ``loss_curve_``, and the fits must stop at the
same epoch: this pins the update rules (momentum, Nesterov, Adam's epsilon), the schedules
(invscaling, adaptive), the loss with its penalty, and the stopping count to scikit-learn's code.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from nnexp.data.loading import load_data
from nnexp.data.splits import make_fit_data
from nnexp.factory import instantiate
from nnexp.fit import Factories, fit_and_score, prepare_network
from nnexp.models.task import Task
from nnexp.sklearn_random import fit_data_options
from nnexp.sklearn_twin import sklearn_twin
from nnexp.training.stopping import NoImprovementCount

SOLVERS = {
    # id: (nnexp overrides, scikit-learn parameters)
    "gd": (["optim=gd", "optim.lr=0.2"], dict(solver="sgd", learning_rate_init=0.2, momentum=0.0, nesterovs_momentum=False)),
    "momentum": (["optim=sgd", "optim.lr=0.05", "optim.nesterov=false"],
                 dict(solver="sgd", learning_rate_init=0.05, momentum=0.9, nesterovs_momentum=False)),
    "nesterov": (["optim=sgd", "optim.lr=0.05"], dict(solver="sgd", learning_rate_init=0.05, momentum=0.9, nesterovs_momentum=True)),
    "nesterov-invscaling": (["optim=sgd", "optim.lr=0.5", "schedule=invscaling"],
                            dict(solver="sgd", learning_rate_init=0.5, learning_rate="invscaling", momentum=0.9)),
    "momentum-invscaling": (["optim=sgd", "optim.lr=0.5", "optim.nesterov=false", "schedule=invscaling", "schedule.power_t=0.25"],
                            dict(solver="sgd", learning_rate_init=0.5, learning_rate="invscaling", power_t=0.25,
                                 momentum=0.9, nesterovs_momentum=False)),
    "nesterov-adaptive": (["optim=sgd", "optim.lr=0.05", "schedule=adaptive", "stopping.tol=0.01", "stopping.patience=2"],
                          dict(solver="sgd", learning_rate_init=0.05, learning_rate="adaptive", momentum=0.9,
                               tol=0.01, n_iter_no_change=2)),
    "adam": (["optim=adam", "optim.lr=0.01"], dict(solver="adam", learning_rate_init=0.01)),
    # A large epsilon makes its placement (before or after the bias correction) visible.
    "adam-epsilon": (["optim=adam", "optim.lr=0.01", "optim.eps=1e-3"], dict(solver="adam", learning_rate_init=0.01, epsilon=1e-3)),
}


def nnexp_start(compose_cfg, overrides):
    """The composed config, its data, stopping rule, factories and nnexp's initial network."""
    cfg = compose_cfg(*overrides, fast=False)
    bundle = load_data(cfg.data)
    stopping = instantiate(cfg.stopping)
    data = make_fit_data(bundle, validation_fraction=stopping.validation_fraction, seed=cfg.seed, **fit_data_options(cfg, bundle))
    factories = Factories.from_config(cfg)
    network = prepare_network(cfg, factories, bundle, data, describe=False).module
    return cfg, bundle, stopping, data, factories, network


def sklearn_from(network, bundle, X: np.ndarray, y: np.ndarray, **params):
    """scikit-learn's MLP from ``network``'s weights, full batch and unshuffled."""
    return sklearn_twin(network, bundle.task, X, y, batch_size=len(X), shuffle=False, random_state=0, **params)


def train_xy(data, bundle) -> tuple[np.ndarray, np.ndarray]:
    X = data.train.X.double().numpy()
    y = data.train.y.numpy()
    return X, (y.ravel().astype(np.float64) if bundle.task == "regression" else y.astype(int))


@pytest.mark.parametrize("solver", SOLVERS, ids=list(SOLVERS))
@pytest.mark.parametrize("problem", [
    ["data=iris", "model.hidden_sizes=[10]", "model.activation=tanh"],
    ["data=wave", "model.hidden_sizes=[8,8]", "model.activation=relu", "regularization.alpha=0.01"],
], ids=["iris-tanh", "wave-relu-l2"])
def test_losses_and_stopping_epoch_equal_sklearns(compose_cfg, solver, problem):
    overrides, params = SOLVERS[solver]
    max_epochs = 300
    cfg, bundle, stopping, data, factories, network = nnexp_start(
        compose_cfg, [*problem, *overrides, "batch_size=full", f"trainer.max_epochs={max_epochs}", "seed=3"])
    X, y = train_xy(data, bundle)
    params = {"alpha": float(cfg.regularization.alpha), "tol": 1e-4, "n_iter_no_change": 10, **params, "max_iter": max_epochs}
    reference = sklearn_from(network, bundle, X, y, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference.fit(X, y)

    result = fit_and_score(cfg, factories, bundle, data, stopping, instantiate(cfg.regularization))
    losses = np.array([row["train_loss"] for row in result.history])

    assert len(losses) == len(reference.loss_curve_), (len(losses), len(reference.loss_curve_))
    np.testing.assert_allclose(losses, reference.loss_curve_, rtol=1e-5)
    np.testing.assert_allclose(losses[:20], reference.loss_curve_[:20], rtol=1e-6)
    if len(losses) < max_epochs:
        assert result.metrics.stop_reason == "converged"


@pytest.mark.parametrize("problem, budget", [
    (["data=iris", "model=logistic", "regularization.alpha=1.0"], "converged"),
    (["data=moons", "model.hidden_sizes=[10,10,10]", "model.activation=tanh", "optim.max_iter=60"], "max_iter"),
    (["data=wave", "model.hidden_sizes=[20]", "model.activation=tanh", "optim.max_fun=40"], "max_fun"),
], ids=["converges", "max_iter", "max_fun"])
def test_lbfgs_stops_for_sklearns_reason_at_its_loss(compose_cfg, problem, budget):
    cfg, bundle, stopping, data, factories, network = nnexp_start(compose_cfg, [*problem, "optim=lbfgs", "seed=1"])
    X, y = train_xy(data, bundle)
    reference = sklearn_from(network, bundle, X, y, solver="lbfgs", alpha=float(cfg.regularization.alpha),
                             max_iter=int(cfg.optim.max_iter), max_fun=int(cfg.optim.max_fun), tol=float(cfg.optim.tol))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        reference.fit(X, y)
    sklearn_converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)

    result = fit_and_score(cfg, factories, bundle, data, stopping, instantiate(cfg.regularization))
    metrics = result.metrics
    assert metrics.stop_reason == budget
    assert (budget == "converged") == sklearn_converged
    final_loss = result.history[-1]["train_loss"]
    assert final_loss == pytest.approx(reference.loss_, rel=0.01)
    # One history row per iteration, and the iteration count is scikit-learn's n_iter_.
    assert [row["epoch"] for row in result.history] == list(range(1, metrics.iterations + 1))
    assert metrics.iterations == reference.n_iter_
    if budget == "max_fun":
        assert metrics.function_evaluations >= int(cfg.optim.max_fun)


@pytest.mark.parametrize("curve", [
    [1.0, 0.9, 0.89995, 0.8999, 0.89985, 0.8998, 0.89975, 0.8997],      # slow fall: stops (best follows each minimum)
    [1.0, 0.5, 0.6, 0.7, 0.4999, 0.8, 0.9, 1.0, 1.1],                    # a real gain resets the count
    [2.0, 2.0, 2.0, 2.0],
    [1.0, float("nan"), 0.9, 0.95, 0.96, 0.97],
])
def test_no_improvement_count_is_sklearns(curve):
    """Step for step against scikit-learn's own ``_update_no_improvement_count`` (loss branch)."""
    tol, patience = 1e-4, 2
    ours = NoImprovementCount(tol, patience, maximize=False)
    theirs = MLPClassifier(tol=tol, n_iter_no_change=patience)
    theirs.loss_curve_, theirs.best_loss_, theirs._no_improvement_count = [], np.inf, 0
    for loss in curve:
        stop = ours.update(loss)
        theirs.loss_curve_.append(loss)
        theirs._update_no_improvement_count(False, None, None, None)
        assert ours.count == theirs._no_improvement_count
        assert ours.best == theirs.best_loss_ or (np.isnan(ours.best) and np.isnan(theirs.best_loss_))
        assert stop == (theirs._no_improvement_count > theirs.n_iter_no_change)


def test_no_improvement_count_on_scores_follows_every_new_best():
    """scikit-learn's early-stopping branch: counted when not better than best + tol; best = max."""
    counter = NoImprovementCount(tol=0.01, patience=1, maximize=True)
    assert [counter.update(v) for v in (0.5, 0.505, 0.509, 0.52)] == [False, False, True, False]
    assert counter.best == 0.52 and counter.count == 0


def test_mlp_biases_start_like_sklearns(compose_cfg):
    """Biases are drawn from each layer's Glorot bound, as scikit-learn's ``_init_coef`` does
    (narrowed for logistic units); ``bias_init=zeros`` keeps Keras's zeros."""
    for activation, factor in (("relu", 6.0), ("logistic", 2.0)):
        *_, network = nnexp_start(compose_cfg, ["data=digits", f"model.activation={activation}", "model.hidden_sizes=[50]"])
        for layer in (network.dense1, network.out):
            bound = (factor / (layer.in_features + layer.out_features)) ** 0.5
            assert float(layer.bias.detach().abs().max()) <= bound
            assert float(layer.bias.detach().abs().max()) > 0.5 * bound
            assert float(layer.weight.detach().abs().max()) > 0.9 * bound
    *_, network = nnexp_start(compose_cfg, ["data=digits", "model.init=torch", "model.bias_init=zeros"])
    assert float(network.dense1.bias.detach().abs().max()) == 0.0


@pytest.mark.parametrize("model, expected", [
    ({"_target_": "nnexp.models.mlp.MLP", "hidden_sizes": [5]}, True),  # init=sklearn is the default
    ({"_target_": "nnexp.models.mlp.MLP", "hidden_sizes": [], "init": "sklearn"}, True),
    ({"_target_": "nnexp.models.mlp.MLP", "hidden_sizes": [5], "init": "torch"}, False),
    ({"_target_": "nnexp.models.cnn.CNN"}, False),
], ids=["mlp", "logistic", "init-torch", "cnn"])
def test_one_rule_decides_who_draws_from_sklearns_random_state(model, expected):
    """The config's rule (``uses_sklearn_draws``) decides both the data's draws and the network's weights."""
    from omegaconf import OmegaConf

    from nnexp.models.mlp import MLP, load_initial_parameters
    from nnexp.sklearn_models import uses_sklearn_draws
    from nnexp.sklearn_random import draws_for

    cfg = OmegaConf.create({"model": model, "seed": 3})
    bundle = type("Bundle", (), {"input_shape": (2,), "n_outputs": 1})()
    draws = draws_for(cfg, bundle)
    assert uses_sklearn_draws(cfg.model) is expected and (draws is not None) is expected
    if expected:
        network = MLP(2, 1, hidden_sizes=model["hidden_sizes"])
        load_initial_parameters(network, draws, torch.float64)
        weights, biases = draws.initial_parameters()[0]
        first = network.get_submodule("dense1" if model["hidden_sizes"] else "out")
        assert np.array_equal(first.weight.detach().numpy(), weights.T) and np.array_equal(first.bias.detach().numpy(), biases)


def test_lbfgs_vector_is_packed_as_sklearns():
    """scipy gets scikit-learn's vector (``_pack``: every layer's (fan_in, fan_out) weights, then
    every layer's biases): the order changes no step exactly, but scipy's sums round in it."""
    from sklearn.neural_network._multilayer_perceptron import _pack

    from nnexp.models.mlp import MLP, load_initial_parameters
    from nnexp.sklearn_random import SklearnDraws, draw_initial_parameters
    from nnexp.training.lbfgs import pack, sklearn_layout

    network = MLP(3, 2, hidden_sizes=[4, 5], activation="tanh")
    load_initial_parameters(network, SklearnDraws(7, (3, 4, 5, 2), "tanh"), torch.float64)
    drawn = draw_initial_parameters(np.random.RandomState(7), (3, 4, 5, 2), "tanh")
    expected = _pack([weights for weights, _ in drawn], [biases for _, biases in drawn])
    assert np.array_equal(pack(sklearn_layout(network)), expected)
    assert sklearn_layout(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3))) is None


@pytest.mark.parametrize("problem", [
    ["data=moons", "model.hidden_sizes=[10,10,10]", "model.activation=tanh", "optim=lbfgs", "seed=0"],  # the lecture's run
    ["data=iris", "model.hidden_sizes=[10]", "optim=lbfgs", "seed=0"],
], ids=["moons-binary", "iris-multiclass"])
def test_reported_split_losses_are_sklearns_log_loss(compose_cfg, problem):
    """The loss a run reports for a split is ``sklearn.metrics.log_loss`` of its own predicted
    probabilities. The lecture's moons run overfits; one class-1 test point it got wrong with a
    logit of -86.5 once made the unclipped mean 1.32 where scikit-learn's clipped mean said 0.65."""
    from sklearn.metrics import log_loss

    cfg, bundle, stopping, data, factories, network = nnexp_start(compose_cfg, problem)
    result = fit_and_score(cfg, factories, bundle, data, stopping, instantiate(cfg.regularization))
    X_test, y_test = data.test.X, data.test.y.numpy().astype(int)
    with torch.no_grad():
        probabilities = Task(bundle.task, bundle.n_outputs).output_activation(result.network(X_test).double()).numpy()
    if probabilities.ndim == 1:
        probabilities = np.column_stack([1 - probabilities, probabilities])
    assert result.metrics.test_loss == pytest.approx(log_loss(y_test, probabilities), rel=1e-6)


LECTURE_MOONS = ["data=moons", "data.generator.n_samples=100", "data.generator.random_state=3", "data.scale=false"]


def sklearns_own_fit(bundle, data, estimator_params: dict, regression: bool = False):
    """scikit-learn's estimator with ``random_state``, fitted on the fit's scaled training rows
    (all of them: scikit-learn carves its own early-stopping split)."""
    from sklearn.neural_network import MLPRegressor

    def scaled(X):
        return data.feature_scaler.transform(X) if data.feature_scaler is not None else X

    estimator = (MLPRegressor if regression else MLPClassifier)(**estimator_params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(scaled(bundle.X_train), bundle.y_train)
    return estimator, scaled


@pytest.mark.parametrize("overrides, params", [
    (["optim=lbfgs", "model.hidden_sizes=[5]"], dict(solver="lbfgs", hidden_layer_sizes=(5,))),
    (["optim=sgd", "optim.lr=0.1", "model.hidden_sizes=[10]", "batch_size=16", "trainer.max_epochs=60"],
     dict(solver="sgd", learning_rate_init=0.1, hidden_layer_sizes=(10,), batch_size=16, max_iter=60)),
    (["optim=adam", "optim.lr=0.01", "model.hidden_sizes=[8]", "stopping=early_stopping", "trainer.max_epochs=80"],
     dict(solver="adam", learning_rate_init=0.01, hidden_layer_sizes=(8,), early_stopping=True, max_iter=80)),
], ids=["lbfgs", "sgd-minibatch", "adam-early-stopping"])
def test_random_state_draws_sklearns_network_split_and_minibatches(compose_cfg, overrides, params):
    """``seed`` is scikit-learn's ``random_state``: the same starting weights, early-stopping split
    and minibatch orders, so the fit is scikit-learn's own: the same predictions, the same
    iteration count and, epoch by epoch, the same losses (and validation scores)."""
    seed = 10
    cfg, bundle, stopping, data, factories, network = nnexp_start(compose_cfg, [*LECTURE_MOONS, *overrides, f"seed={seed}"])
    reference, scaled = sklearns_own_fit(bundle, data, dict(params, random_state=seed))
    for ours, theirs in zip([m for m in network.modules() if isinstance(m, torch.nn.Linear)], reference.coefs_):
        assert ours.weight.shape == theirs.T.shape
    result = fit_and_score(cfg, factories, bundle, data, stopping, instantiate(cfg.regularization), describe=False)
    with torch.no_grad():
        X_test = torch.as_tensor(scaled(bundle.X_test), dtype=next(result.network.parameters()).dtype)
        ours = Task(bundle.task, bundle.n_outputs).output_activation(result.network(X_test)).numpy() > 0.5
    np.testing.assert_array_equal(ours.astype(int), reference.predict(scaled(bundle.X_test)))
    assert result.metrics.test_score == reference.score(scaled(bundle.X_test), bundle.y_test)
    if params["solver"] == "lbfgs":
        assert result.metrics.iterations == reference.n_iter_
        return
    assert result.metrics.epochs == reference.n_iter_
    np.testing.assert_allclose([row["train_loss"] for row in result.history], reference.loss_curve_, rtol=1e-5)
    if params.get("early_stopping"):
        np.testing.assert_allclose([row["val_score"] for row in result.history], reference.validation_scores_, atol=1e-12)


@pytest.mark.parametrize("problem, seed, params", [
    (["model.hidden_sizes=[100]"], 2, dict(hidden_layer_sizes=(100,))),
    (["model.hidden_sizes=[10,10]", "model.activation=tanh"], 1, dict(hidden_layer_sizes=(10, 10), activation="tanh")),
    (["model.hidden_sizes=[10]", "model.activation=identity"], 0, dict(hidden_layer_sizes=(10,), activation="identity")),
    (["data=iris", "model.hidden_sizes=[10]", "model.activation=logistic"], 0,
     dict(hidden_layer_sizes=(10,), activation="logistic")),
    (["data=wave", "data.scale_target=false", "model.hidden_sizes=[10]"], 1, dict(hidden_layer_sizes=(10,))),
], ids=["moons-relu-long", "moons-tanh", "moons-identity", "iris-logistic", "wave-regression"])
def test_long_lbfgs_fits_are_sklearns_to_the_bit(compose_cfg, problem, seed, params):
    """A long L-BFGS fit follows its objective's last bits (the first three fits part from
    scikit-learn's after 26-45 iterations where torch's arithmetic computes it): nnexp's dense
    objective is scikit-learn's own arithmetic, so every iterate, the final loss, the iteration
    count and the final weights are scikit-learn's, bit for bit."""
    overrides = [*LECTURE_MOONS, *problem] if not any(o.startswith("data=") for o in problem) else problem
    cfg, bundle, stopping, data, factories, network = nnexp_start(compose_cfg, [*overrides, "optim=lbfgs", f"seed={seed}"])
    regression = bundle.task == "regression"
    reference, scaled = sklearns_own_fit(bundle, data, dict(params, solver="lbfgs", random_state=seed), regression)
    result = fit_and_score(cfg, factories, bundle, data, stopping, instantiate(cfg.regularization), describe=False)
    assert result.metrics.iterations == reference.n_iter_
    assert result.history[-1]["train_loss"] == reference.loss_
    linears = [m for m in result.network.modules() if isinstance(m, torch.nn.Linear)]
    for ours, theirs in zip(linears, reference.coefs_, strict=True):
        assert torch.equal(ours.weight.detach(), torch.from_numpy(theirs.T).to(ours.weight.dtype))
    expected = reference.score(scaled(bundle.X_test), bundle.y_test)
    # the same predictions; a regression's R2 differs in float32's last digits (the trained network keeps its dtype)
    assert result.metrics.test_score == (pytest.approx(expected, rel=1e-7) if regression else expected)


def test_each_lbfgs_iterations_validation_scores_are_at_its_own_weights(compose_cfg):
    """numpy's objective never runs the network: each accepted iterate is loaded into it before its
    history row is scored, so the validation split's row follows the fit, and the last row is the
    recorded result."""
    cfg, bundle, stopping, _, factories, network = nnexp_start(compose_cfg, ["data=moons", "optim=lbfgs", "model.hidden_sizes=[10]", "seed=0"])
    data = make_fit_data(bundle, validation_fraction=0.2, seed=cfg.seed, **fit_data_options(cfg, bundle))  # data.validation_fraction's split
    result = fit_and_score(cfg, factories, bundle, data, stopping, instantiate(cfg.regularization), describe=False)
    val_scores = [row["val_score"] for row in result.history]
    assert len(set(val_scores)) > 1
    assert result.history[-1]["val_score"] == result.metrics.val_score
    assert result.history[-1]["val_loss"] == pytest.approx(result.metrics.val_loss, rel=1e-6)


def test_a_network_scikit_learn_has_not_is_left_to_torch():
    """The numpy objective takes only what scikit-learn's MLP computes: a dense net of its
    activations, float64 on the CPU, with an L2 penalty on every weight."""
    from torch import nn

    from nnexp.training.numpy_objective import dense_objective
    from nnexp.training.penalty import WeightPenalty

    task = Task("binary", 1)
    X, y = torch.randn(8, 3, dtype=torch.float64), torch.randint(0, 2, (8,)).double()
    dense = nn.Sequential(nn.Flatten(), nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).double()
    weights = [dense[1].weight, dense[3].weight]
    assert dense_objective(dense, task, X, y, WeightPenalty(alpha=1e-4), weights) is not None
    assert dense_objective(dense, task, X.float(), y, WeightPenalty(alpha=1e-4), weights) is None
    assert dense_objective(dense, task, X, y, WeightPenalty(alpha=1e-4, l1=1e-3), weights) is None
    assert dense_objective(dense, task, X, y, WeightPenalty(alpha=1e-4), weights[:1]) is None
    gelu = nn.Sequential(nn.Linear(3, 4), nn.GELU(), nn.Linear(4, 1)).double()
    assert dense_objective(gelu, task, X, y, WeightPenalty(), [gelu[0].weight, gelu[2].weight]) is None
    dropout = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Dropout(0.2), nn.Linear(4, 1)).double()
    assert dense_objective(dropout, task, X, y, WeightPenalty(), [dropout[0].weight, dropout[3].weight]) is None

    class Residual(nn.Sequential):  # its own forward: not the layers one after another
        def forward(self, x):
            return super().forward(x) + x[:, :1]

    residual = Residual(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).double()
    assert dense_objective(residual, task, X, y, WeightPenalty(), [residual[0].weight, residual[2].weight]) is None
    dense[3].register_forward_hook(lambda module, inputs, output: output * 2)
    assert dense_objective(dense, task, X, y, WeightPenalty(alpha=1e-4), weights) is None


def test_init_torch_keeps_torchs_draws(compose_cfg):
    """``model.init=torch``: torch's seeded generator draws the weights, not scikit-learn's."""
    *_, sklearn_net = nnexp_start(compose_cfg, [*LECTURE_MOONS, "model.hidden_sizes=[5]", "seed=10"])
    *_, torch_net = nnexp_start(compose_cfg, [*LECTURE_MOONS, "model.hidden_sizes=[5]", "seed=10", "model.init=torch"])
    drawn = np.random.RandomState(10).uniform(-1, 1, 1)  # the first draw's sign pattern is enough
    assert not torch.equal(sklearn_net.dense1.weight, torch_net.dense1.weight)
    bound = (6.0 / (2 + 5)) ** 0.5
    assert float(sklearn_net.dense1.weight[0, 0].detach()) == pytest.approx(bound * drawn[0], rel=1e-6)


def test_sklearn_true_fits_sklearns_estimator_beside_the_run(run_nnexp, capsys):
    """``sklearn=true``: both rows printed and recorded; on the lecture's L-BFGS one-liner they are equal."""
    import json
    from pathlib import Path

    metrics = run_nnexp("data=moons", "optim=lbfgs", "model.hidden_sizes=[5]", "seed=10", "sklearn=true", fast=False)
    rows = json.loads((Path(metrics["run_dir"]) / "sklearn.json").read_text())
    assert rows["same"] and rows["scikit-learn"]["n_iter"] == 73 == metrics["iterations"]
    assert rows["nnexp"]["test_score"] == rows["scikit-learn"]["test_score"] == metrics["test_score"]
    assert "solver='lbfgs'" in rows["estimator"] and "random_state=10" in rows["estimator"]


def test_sklearn_true_says_why_it_cannot(compose_cfg):
    import io

    from rich.console import Console

    from nnexp.runner import run

    buffer = io.StringIO()
    run(compose_cfg("data=moons", "optim=adam", "model.dropout=0.2", "sklearn=true"), console=Console(file=buffer, width=200))
    lines = [line for line in buffer.getvalue().splitlines() if "sklearn=true" in line]
    assert len(lines) == 1 and "no dropout (model.dropout)" in lines[0]
    buffer = io.StringIO()  # a setting scikit-learn's L-BFGS cannot take: no fit, and the key named
    run(compose_cfg("data=moons", "optim=lbfgs", "optim.history_size=20", "sklearn=true"), console=Console(file=buffer, width=200))
    assert "scikit-learn's L-BFGS keeps 10 pairs (optim.history_size=20)" in buffer.getvalue()

