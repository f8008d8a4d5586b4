"""nnexp against scikit-learn's MLPClassifier / MLPRegressor: test scores over seeds, side by side.

Seven bundled data sets (breast cancer, digits, iris, wine, diabetes, moons, circles), five
solver settings (lbfgs; adam; sgd with constant, invscaling and adaptive rates), two nets
((100,) relu and (10,10,10) tanh), seeds 0-4. Both libraries get the same split and scaling
(nnexp's, regression targets standardised as nnexp does) and scikit-learn's default
hyperparameters (alpha 1e-4, lr 1e-3, momentum 0.9 with Nesterov, batch auto, tol 1e-4,
n_iter_no_change 10, max_iter 200).

By default both start from the same initial weights: nnexp's seeded initialisation, copied into
scikit-learn (``nnexp.sklearn_twin``), which then shuffles with ``random_state=seed``. What is
left to differ is what training does, and the minibatch order. ``--own-init`` lets scikit-learn
draw its own initial weights (the same distribution, another generator): then a 5-seed mean
differs by about 0.6 seed standard deviations by chance alone, and some rows past one standard
deviation are expected even with identical algorithms.

A row is flagged when its mean test scores differ by more than the larger of one test sample
(0.02 for R2) and the larger of the two seed standard deviations.

    python scripts/bench_parity.py [--seeds 5] [--workers 2] [--data iris,wine] [--own-init]
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np

DATASETS = ("breast_cancer", "digits", "iris", "wine", "diabetes", "moons", "circles")
SOLVERS = {
    "lbfgs": (["optim=lbfgs"], dict(solver="lbfgs")),
    "adam": (["optim=adam"], dict(solver="adam")),
    "sgd": (["optim=sgd", "schedule=constant"], dict(solver="sgd", learning_rate="constant")),
    "sgd-invscaling": (["optim=sgd", "schedule=invscaling"], dict(solver="sgd", learning_rate="invscaling")),
    "sgd-adaptive": (["optim=sgd", "schedule=adaptive"], dict(solver="sgd", learning_rate="adaptive")),
}
NETS = {"(100,) relu": ([100], "relu"), "(10,10,10) tanh": ([10, 10, 10], "tanh")}
REGRESSION_TOLERANCE = 0.02  # R2 points standing in for "one test sample"


def one_row(data: str, solver: str, net: str, seeds: int, own_init: bool) -> dict:
    """Both libraries' test scores (and epochs) over ``seeds`` seeds for one table row."""
    import contextlib
    import io

    import torch
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from threadpoolctl import threadpool_limits

    from nnexp.data.loading import load_data
    from nnexp.data.splits import make_fit_data
    from nnexp.factory import instantiate
    from nnexp.fit import Factories, fit_and_score, prepare_network
    from nnexp.process import quiet_lightning
    from nnexp.sklearn_twin import sklearn_twin

    torch.set_num_threads(1)
    quiet_lightning()
    warnings.filterwarnings("ignore")
    sizes, activation = NETS[net]
    overrides, params = SOLVERS[solver]
    ours, theirs, our_epochs, their_epochs = [], [], [], []
    for seed in range(seeds):
        GlobalHydra.instance().clear()
        with initialize_config_module("nnexp.configs", version_base="1.3"):
            cfg = compose("train", overrides=[
                f"data={data}", *overrides, f"model.hidden_sizes=[{','.join(map(str, sizes))}]",
                f"model.activation={activation}", f"seed={seed}", "quiet=true", "logger=none", "plots=false",
                "paths.output_dir=/tmp/nnexp-parity"])
        bundle = load_data(cfg.data)
        stopping = instantiate(cfg.stopping)
        data_split = make_fit_data(bundle, validation_fraction=stopping.validation_fraction, seed=seed)
        factories = Factories.from_config(cfg)
        start = prepare_network(cfg, factories, bundle, data_split, describe=False).module  # the fit's own first weights
        with contextlib.redirect_stdout(io.StringIO()):
            result = fit_and_score(cfg, factories, bundle, data_split, stopping, instantiate(cfg.regularization), describe=False)
        ours.append(result.metrics.test_score)
        our_epochs.append(result.metrics.epochs)

        X_train, X_test = (data_split.feature_scaler.transform(X.reshape(len(X), -1)) for X in (bundle.X_train, bundle.X_test))
        y_train, y_test = bundle.y_train, bundle.y_test
        estimator = MLPClassifier
        if bundle.task == "regression":
            estimator = MLPRegressor
            y_train = (y_train - data_split.target_mean[0]) / data_split.target_scale[0]
            y_test = (y_test - data_split.target_mean[0]) / data_split.target_scale[0]
        with threadpool_limits(1):
            if own_init:
                model = estimator(hidden_layer_sizes=tuple(sizes), activation=activation, random_state=seed, **params)
            else:
                model = sklearn_twin(start, bundle.task, X_train, y_train, random_state=seed, **params)
            model.fit(X_train, y_train)
            theirs.append(model.score(X_test, y_test))
        their_epochs.append(model.n_iter_)
    return dict(data=data, solver=solver, net=net, task=bundle.task, n_test=len(bundle.y_test),
                ours=ours, theirs=theirs, our_epochs=our_epochs, their_epochs=their_epochs)


def verdict(row: dict) -> tuple[float, float, bool]:
    """(difference of means, allowed difference, flagged)."""
    ours, theirs = np.array(row["ours"]), np.array(row["theirs"])
    sample = REGRESSION_TOLERANCE if row["task"] == "regression" else 1.0 / row["n_test"]
    allowed = max(sample, ours.std(), theirs.std())
    difference = ours.mean() - theirs.mean()
    return difference, allowed, abs(difference) > allowed + 1e-12


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--data", default=",".join(DATASETS))
    parser.add_argument("--own-init", action="store_true", help="scikit-learn draws its own initial weights")
    args = parser.parse_args()
    rows = list(itertools.product(args.data.split(","), SOLVERS, NETS))
    started = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(one_row, *zip(*rows), itertools.repeat(args.seeds), itertools.repeat(args.own_init)))
    start = "each library's own initial weights" if args.own_init else "the same initial weights (nnexp's, copied)"
    print(f"nnexp vs scikit-learn from {start}, test score mean ± std over seeds 0-{args.seeds - 1} "
          f"({time.perf_counter() - started:.0f} s, {args.workers} workers)\n")
    print(f"| data | solver | net | scikit-learn | nnexp | diff | allowed | epochs sk / nnexp | flag |")
    print("|---|---|---|---|---|---|---|---|---|")
    flagged = 0
    for row in results:
        difference, allowed, flag = verdict(row)
        flagged += flag
        print(f"| {row['data']} | {row['solver']} | {row['net']} | {np.mean(row['theirs']):.4f} ± {np.std(row['theirs']):.4f} "
              f"| {np.mean(row['ours']):.4f} ± {np.std(row['ours']):.4f} | {difference:+.4f} | {allowed:.4f} "
              f"| {np.mean(row['their_epochs']):.0f} / {np.mean(row['our_epochs']):.0f} | {'**FLAG**' if flag else ''} |")
    print(f"\n{flagged} of {len(results)} rows flagged (difference of means > max(one test sample or 0.02 R2, "
          f"larger seed std)).")


if __name__ == "__main__":
    main()
