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

``--same-random-state``: the lecture's one-liners on the lecture's data (``data=moons``), 5 random
states each, nnexp's ``seed`` against scikit-learn's own ``random_state`` (no copied weights): the
fraction of fits with the same train and test scores and the same ``n_iter_``; the rest listed
with scikit-learn perturbed against itself (features times 1 + 1e-15), which shows rounding drift.
``--grids``: both grid presets (``sweep=alpha_grid``, ``sweep=hidden_sizes``) against
``GridSearchCV`` on the same split: ``mean_test_score`` per grid point and the best parameters.
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

    from nnexp.compat import hydra_version_base
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
        with initialize_config_module("nnexp.configs", **hydra_version_base()):
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


# The lecture's one-liners (scikit-learn's parameters; nnexp's keys are the vocabulary's renaming).
ONE_LINERS = {
    "lbfgs (100,)": dict(solver="lbfgs"),
    "lbfgs (10,)": dict(solver="lbfgs", hidden_layer_sizes=(10,)),
    "lbfgs (10,10) tanh": dict(solver="lbfgs", hidden_layer_sizes=(10, 10), activation="tanh"),
    "sgd momentum batch 16": dict(solver="sgd", learning_rate_init=0.1, momentum=0.9, batch_size=16, hidden_layer_sizes=(10,), max_iter=300),
    "adam": dict(solver="adam", learning_rate_init=0.01, hidden_layer_sizes=(10,), max_iter=300),
    "adam early stopping": dict(solver="adam", learning_rate_init=0.01, hidden_layer_sizes=(10,), early_stopping=True, max_iter=300),
    "regression lbfgs (wave)": dict(solver="lbfgs", hidden_layer_sizes=(10,)),
}
SKLEARN_KEYS = {"solver": "optim", "hidden_layer_sizes": "model.hidden_sizes", "activation": "model.activation",
                "learning_rate_init": "optim.lr", "momentum": "optim.momentum", "batch_size": "batch_size"}


def nnexp_overrides(params: dict) -> list[str]:
    """nnexp's command line for a one-liner's scikit-learn parameters."""
    overrides = []
    for key, value in params.items():
        if key == "hidden_layer_sizes":
            value = "[" + ",".join(map(str, value)) + "]"
        if key == "early_stopping":
            overrides.append("stopping=early_stopping")
        elif key == "max_iter":
            overrides.append(f"{'optim.max_iter' if params['solver'] == 'lbfgs' else 'trainer.max_epochs'}={value}")
        else:
            overrides.append(f"{SKLEARN_KEYS[key]}={value}")
    if params.get("solver") == "sgd":
        overrides.append("optim.nesterov=true")
    return overrides


def same_random_state(name: str, seed: int) -> dict:
    """One fit of a one-liner: nnexp with ``seed``, scikit-learn with ``random_state`` (and perturbed)."""
    import contextlib
    import io

    import torch
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from threadpoolctl import threadpool_limits

    from nnexp.compat import hydra_version_base
    from nnexp.data.bundle import fit_validation_fraction
    from nnexp.data.loading import load_data
    from nnexp.data.splits import make_fit_data
    from nnexp.factory import instantiate
    from nnexp.fit import Factories, fit_and_score
    from nnexp.process import quiet_lightning
    from nnexp.sklearn_random import fit_data_options

    torch.set_num_threads(1)
    quiet_lightning()
    warnings.filterwarnings("ignore")
    params = ONE_LINERS[name]
    regression = name.startswith("regression")
    data = ["data=wave", "data.scale_target=false"] if regression else ["data=moons"]
    GlobalHydra.instance().clear()
    with initialize_config_module("nnexp.configs", **hydra_version_base()):
        cfg = compose("train", overrides=[*data, *nnexp_overrides(params), f"seed={seed}", "quiet=true", "logger=none",
                                          "plots=false", "paths.output_dir=/tmp/nnexp-parity"])
    bundle = load_data(cfg.data)
    stopping = instantiate(cfg.stopping)
    split = make_fit_data(bundle, validation_fraction=fit_validation_fraction(bundle, stopping), seed=seed,
                          **fit_data_options(cfg, bundle))
    with contextlib.redirect_stdout(io.StringIO()):
        result = fit_and_score(cfg, Factories.from_config(cfg), bundle, split, stopping, instantiate(cfg.regularization), describe=False)
    ours = result.metrics
    scaled = split.feature_scaler.transform if split.feature_scaler is not None else (lambda X: X)
    X_train, X_test = scaled(bundle.X_train), scaled(bundle.X_test)
    estimator = MLPRegressor if regression else MLPClassifier
    fits = {}
    with threadpool_limits(1):
        for label, factor in (("sklearn", 1.0), ("perturbed", 1.0 + 1e-15)):
            model = estimator(random_state=seed, **params).fit(X_train * factor, bundle.y_train)
            fits[label] = model
    model = fits["sklearn"]
    # nnexp's train score is on the rows it trained on (less the early-stopping split): score scikit-learn there
    train_X = split.train.X.double().numpy()
    train_y = split.train.y.numpy().ravel() if regression else split.train.y.numpy().astype(int)
    theirs_train = model.score(train_X, train_y)
    iterations = ours.iterations if params["solver"] == "lbfgs" else ours.epochs
    perturbed = fits["perturbed"]
    return dict(name=name, seed=seed, ours=(ours.train_score, ours.test_score, iterations),
                theirs=(theirs_train, model.score(X_test, bundle.y_test), model.n_iter_),
                perturbed=(perturbed.score(train_X, train_y), perturbed.score(X_test, bundle.y_test), perturbed.n_iter_),
                our_losses=[row["train_loss"] for row in result.history], their_losses=list(getattr(model, "loss_curve_", []) or []))


def first_divergence(row: dict) -> str:
    """The first epoch whose losses differ by more than 1e-6 (relative), where scikit-learn keeps a loss curve."""
    for epoch, (a, b) in enumerate(zip(row["our_losses"], row["their_losses"]), start=1):
        if abs(a - b) > 1e-6 * max(abs(b), 1e-12):
            return f"losses part at epoch {epoch} ({a:.8g} vs {b:.8g})"
    return "losses equal to 1e-6 throughout"


def same(ours: tuple, theirs: tuple, regression: bool) -> bool:
    """Equal n_iter_ and scores: exactly for accuracy (the same predictions), within 1e-6 for R2
    (nnexp scores float32 outputs, so R2's last digits differ where every prediction agrees)."""
    tolerance = 1e-6 if regression else 0.0
    return ours[2] == theirs[2] and all(abs(a - b) <= tolerance for a, b in zip(ours[:2], theirs[:2]))


def report_same_random_state(seeds: int, workers: int) -> None:
    rows = [(name, seed) for name in ONE_LINERS for seed in range(seeds)]
    with ProcessPoolExecutor(workers) as pool:
        results = list(pool.map(same_random_state, *zip(*rows)))
    equal = [r for r in results if same(r["ours"], r["theirs"], r["name"].startswith("regression"))]
    print(f"same random_state: {len(equal)} of {len(results)} fits ({100 * len(equal) / len(results):.0f}%) have "
          "scikit-learn's train and test scores exactly and its n_iter_\n")
    print("| one-liner | seed | nnexp train / test / n_iter | scikit-learn | scikit-learn, X * (1 + 1e-15) | where |")
    print("|---|---|---|---|---|---|")
    for r in results:
        if r in equal:
            continue
        drift = "rounding drift: scikit-learn moves too" if r["perturbed"] != r["theirs"] else "scikit-learn stable under the perturbation"
        fmt = lambda t: f"{t[0]:.4f} / {t[1]:.4f} / {t[2]}"
        where = first_divergence(r) if r["their_losses"] else "L-BFGS (no loss curve)"
        print(f"| {r['name']} | {r['seed']} | {fmt(r['ours'])} | {fmt(r['theirs'])} | {fmt(r['perturbed'])} | {where}; {drift} |")


GRID_PRESETS = {
    "alpha_grid": ("alpha", [1e-3, 1e-2, 1e-1, 1, 10, 100, 1000], "regularization.alpha"),
    "hidden_sizes": ("hidden_layer_sizes", [(10,), (50,), (100,), (500,), (10, 10), (50, 50), (100, 100), (500, 500)], "model.hidden_sizes"),
}


def report_grids(presets: list[str]) -> None:
    """Each preset's summary.csv against GridSearchCV(make_pipeline(StandardScaler(), MLPClassifier(solver='lbfgs',
    random_state=1)), cv=5) on nnexp's training split of breast cancer."""
    import csv
    import sys
    import tempfile
    from pathlib import Path

    from hydra.core.global_hydra import GlobalHydra
    from sklearn.model_selection import GridSearchCV
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    from nnexp import cli
    from nnexp.data.loading import load_data

    bundle = None
    for preset in presets:
        key, values, nnexp_key = GRID_PRESETS[preset]
        home = os.getcwd()
        with tempfile.TemporaryDirectory() as folder:
            os.chdir(folder)
            try:
                GlobalHydra.instance().clear()
                sys.argv = ["nnexp", "-m", f"sweep={preset}", "quiet=true", "logger=none", "plots=false",
                            "hydra/hydra_logging=none", "hydra/job_logging=none", "hydra.sweep.dir=sweep"]
                started = time.perf_counter()
                cli.main()
                ours_seconds = time.perf_counter() - started
                rows = list(csv.DictReader(Path("sweep/summary.csv").open()))
            finally:
                os.chdir(home)
        if bundle is None:
            from hydra import compose, initialize_config_module

            from nnexp.compat import hydra_version_base

            GlobalHydra.instance().clear()
            with initialize_config_module("nnexp.configs", **hydra_version_base()):
                cfg = compose("train", overrides=["paths.output_dir=/tmp/nnexp-parity"])
            bundle = load_data(cfg.data)
        search = GridSearchCV(make_pipeline(StandardScaler(), MLPClassifier(solver="lbfgs", random_state=1)),
                              {f"mlpclassifier__{key}": values}, cv=5)
        with threadpool_limits(1), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            started = time.perf_counter()
            search.fit(bundle.X_train, bundle.y_train)
            theirs_seconds = time.perf_counter() - started
        theirs = search.cv_results_["mean_test_score"]
        ours = {}
        for row in rows:
            value = next(word.split("=", 1)[1] for word in row["command"].split() if word.startswith(nnexp_key + "="))
            ours[value] = float(row["mean_val_score"]) if "mean_val_score" in row else float(row["val_score"])
        print(f"\nsweep={preset} against GridSearchCV ({ours_seconds:.0f} s / {theirs_seconds:.0f} s)")
        print("| value | GridSearchCV mean_test_score | nnexp | difference |")
        print("|---|---|---|---|")
        worst = 0.0
        for value, score in zip(values, theirs):
            text = str(list(value)).replace(" ", "") if isinstance(value, tuple) else str(value)
            mine = next((v for k, v in ours.items() if k.replace(" ", "") in (text, f"{value:g}" if not isinstance(value, tuple) else text)
                         or (not isinstance(value, tuple) and float(k) == value)), float("nan"))
            worst = max(worst, abs(mine - score)) if mine == mine else float("inf")
            print(f"| {text} | {score:.6f} | {mine:.6f} | {mine - score:+.2e} |")
        best_ours = min(rows, key=lambda row: int(row.get("rank_val_score", row.get("rank", 0)) or 0))
        print(f"largest difference {worst:.2e}; best: GridSearchCV {search.best_params_}, nnexp "
              f"{next(w for w in best_ours['command'].split() if w.startswith(nnexp_key + '='))}")


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
    parser.add_argument("--same-random-state", action="store_true", help="the lecture's one-liners, seed = random_state")
    parser.add_argument("--grids", default="", help="grid presets against GridSearchCV, e.g. alpha_grid,hidden_sizes")
    args = parser.parse_args()
    if args.same_random_state or args.grids:
        if args.same_random_state:
            report_same_random_state(args.seeds, args.workers)
        if args.grids:
            report_grids(args.grids.split(","))
        return
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
