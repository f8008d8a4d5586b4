"""nnexp against scikit-learn's MLPClassifier and a plain PyTorch loop, in one process.

Datasets: breast cancer and digits. Same hyperparameters everywhere: hidden [100], relu,
alpha 1e-4; Adam (lr 1e-3, batch auto, at most 200 epochs) and L-BFGS (at most 200 iterations).
scikit-learn runs with BLAS pinned to one thread (threadpoolctl), its fastest setting here.

Prints test accuracy, fit time and their ratios; the epoch-loop ratio against a plain PyTorch
loop doing exactly the same steps; and the CLI's wall time from the shell: the default run as a
fresh process and with ``NNEXP_WARM=1`` (a private warm server, started before the timing),
against the same fit as a scikit-learn script.

``--busy`` adds a busy-machine section: the default run (breast cancer, Adam) and its
scikit-learn fit, quiet and with two busy processes of the script's own (bounded in time), with
``threads=auto`` (the default) and ``threads=null`` (one per core, the old default), in
``--repeats`` interleaved rounds (best and median; ``--repeats 8`` for a steadier figure).

``--lbfgs-objective`` times single L-BFGS fits three ways, side by side: nnexp with scikit-learn's
arithmetic (its numpy objective, the default on the CPU), nnexp with torch's autograd objective
(the previous approach, patched in for the comparison), and scikit-learn's own estimator (BLAS on
one thread, and on its default threads); with each fit's iterations, and a note where they differ from
scikit-learn's.

    python scripts/bench_tabular.py [--repeats 3] [--no-cli | --cli-only] [--busy] [--lbfgs-objective]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from hydra import compose, initialize_config_module
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from nnexp.compat import hydra_version_base
from nnexp.data.sources import BundledSource
from nnexp.data.splits import make_fit_data
from nnexp.models.mlp import MLP
from nnexp.models.task import Task
from nnexp.process import set_up_process
from nnexp.runner import run

DATASETS = ("breast_cancer", "digits")
SOLVERS = {
    "adam": dict(sklearn=dict(solver="adam", learning_rate_init=1e-3, max_iter=200), nnexp=["optim=adam"]),
    "lbfgs": dict(
        sklearn=dict(solver="lbfgs", max_iter=200),
        nnexp=["optim=lbfgs"],  # 200 iterations in all, as scikit-learn
    ),
}


def best_of(repeats: int, fn):
    results = [fn() for _ in range(repeats)]
    return min(results, key=lambda r: r["seconds"])


def sklearn_fit(name: str, solver: str):
    from sklearn import datasets

    bundle = BundledSource(loader=getattr(datasets, f"load_{name}"), name=name).load()
    model = make_pipeline(
        StandardScaler(),
        MLPClassifier(hidden_layer_sizes=(100,), activation="relu", alpha=1e-4, random_state=0, **SOLVERS[solver]["sklearn"]),
    )
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        started = time.perf_counter()
        model.fit(bundle.X_train, bundle.y_train)
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "test": model.score(bundle.X_test, bundle.y_test), "epochs": model[-1].n_iter_}


def nnexp_fit(name: str, overrides: list[str], out: Path):
    with initialize_config_module("nnexp.configs", **hydra_version_base()):
        cfg = compose("train", overrides=[f"data={name}", "quiet=true", "logger=none", "plots=false", f"paths.output_dir={out}", *overrides])
    with contextlib.redirect_stdout(io.StringIO()):
        started = time.perf_counter()
        run(cfg)
        wall = time.perf_counter() - started
    metrics = json.loads((out / "metrics.json").read_text())
    return {"seconds": metrics["fit_seconds"], "wall": wall, "test": metrics["test_score"], "epochs": metrics["epochs"]}


def plain_loop(name: str, epochs: int):
    """The same steps as nnexp's Adam epochs, written as a bare PyTorch loop."""
    from sklearn import datasets

    bundle = BundledSource(loader=getattr(datasets, f"load_{name}"), name=name).load()
    data = make_fit_data(bundle)
    X, y = data.train.X, data.train.y
    task = Task(bundle.task, bundle.n_outputs)
    torch.manual_seed(0)
    net = MLP(bundle.input_shape, task.n_outputs, [100])
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
    weights = [p for p in net.parameters() if p.ndim > 1]
    generator = torch.Generator().manual_seed(0)
    batch = min(200, len(X))
    started = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(X), generator=generator)
        total = torch.zeros(())
        for start in range(0, len(X), batch):
            rows = order[start : start + batch]
            optimizer.zero_grad(set_to_none=True)
            out = net(X[rows])
            loss = task.loss(out, y[rows]) + 0.5 * 1e-4 / len(rows) * sum(w.square().sum() for w in weights)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(rows)
        float(total)  # one host sync per epoch, as nnexp does
    return {"seconds": time.perf_counter() - started}


# The default run's fit as a student's scikit-learn script: the same data, split, scaling,
# network, solver and seed, its test score printed.
SKLEARN_SCRIPT = """
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler
X, y = load_breast_cancer(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
scaler = StandardScaler().fit(X_train)
model = MLPClassifier(hidden_layer_sizes=(100,), alpha=1e-4, random_state=0, max_iter=200)
model.fit(scaler.transform(X_train), y_train)
print(model.score(scaler.transform(X_test), y_test))
"""


def program(name: str) -> str:
    """A console script (or the interpreter) of this environment."""
    return str(Path(sys.executable).with_name(name))


def cli_wall(args: list[str], repeats: int, name: str = "nnexp", check: bool = True, env: dict | None = None) -> float:
    """Best wall time of the program ``name`` with ``args`` from a shell, in a fresh folder."""
    times = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(repeats):
            started = time.perf_counter()
            subprocess.run([program(name), *args], cwd=folder, capture_output=True, check=check, env=env)
            times.append(time.perf_counter() - started)
    return min(times)


def busy_section(repeats: int, out: Path) -> None:
    """The default run, the alpha grid and their scikit-learn twins, quiet and under two busy processes."""
    from bench_presets import nnexp_sweep, sklearn_search  # scripts/, this script's folder, is on sys.path
    from busy import busy_processes

    fits = {
        "auto": lambda: nnexp_fit("breast_cancer", ["threads=auto"], out),
        "null": lambda: nnexp_fit("breast_cancer", ["threads=null"], out),
        "sklearn": lambda: sklearn_fit("breast_cancer", "adam"),
    }
    print("\nBusy machine: quiet and with 2 busy processes on "
          f"{torch.get_num_threads()} threads' worth of cores ({repeats} interleaved rounds; the grids once each):")
    rows, grids = {}, {}
    for load in ("quiet", "busy"):
        with busy_processes(2 if load == "busy" else 0, seconds=900):
            # Interleaved, so that a slow stretch of this VM hits every variant alike; a 0.2-0.4 s
            # fit moves by a scheduler slice or two, hence the median beside the best.
            rounds = [{name: fit() for name, fit in fits.items()} for _ in range(repeats)]
            rows[load] = {name: [r[name]["seconds"] for r in rounds] for name in fits}
            grids[load] = {"nnexp": nnexp_sweep("sweep=alpha_grid")[0], "sklearn": sklearn_search("alpha_grid")[0]}
    print(" the default run (breast cancer, Adam), fit seconds, best and median:")
    for name, label in (("auto", "nnexp threads=auto"), ("null", "nnexp threads=null"), ("sklearn", "scikit-learn")):
        quiet, busy = rows["quiet"][name], rows["busy"][name]
        best, middle = (min(quiet), min(busy)), (statistics.median(quiet), statistics.median(busy))
        print(f"  {label:20} best {best[0]:.3f} s quiet, {best[1]:.3f} s busy: {best[1] / best[0]:.2f}x;  "
              f"median {middle[0]:.3f} -> {middle[1]:.3f} s: {middle[1] / middle[0]:.2f}x")
    print(" the alpha grid (sweep=alpha_grid as written: 7 alphas, 5-fold CV, refit; Adam), wall:")
    for name, label in (("nnexp", "nnexp -m sweep=alpha_grid"), ("sklearn", "GridSearchCV, BLAS 1 thread")):
        quiet, busy = grids["quiet"][name], grids["busy"][name]
        print(f"  {label:28} {quiet:.2f} s quiet, {busy:.2f} s busy: {busy / quiet:.2f}x")


LBFGS_FITS = {  # name: (nnexp overrides, scikit-learn's estimator parameters)
    "moons (100,), seed 2": (["data=moons", "model.hidden_sizes=[100]", "seed=2"], dict(hidden_layer_sizes=(100,), random_state=2)),
    "moons (10,10) tanh, seed 1": (["data=moons", "model.hidden_sizes=[10,10]", "model.activation=tanh", "seed=1"],
                                   dict(hidden_layer_sizes=(10, 10), activation="tanh", random_state=1)),
    "breast_cancer (100,)": (["data=breast_cancer", "model.hidden_sizes=[100]", "seed=0"], dict(hidden_layer_sizes=(100,), random_state=0)),
    "digits (100,)": (["data=digits", "model.hidden_sizes=[100]", "seed=0"], dict(hidden_layer_sizes=(100,), random_state=0)),
    "digits (1000,)": (["data=digits", "model.hidden_sizes=[1000]", "seed=0"], dict(hidden_layer_sizes=(1000,), random_state=0)),
}


def lbfgs_objective_section(repeats: int, out: Path) -> None:
    """One L-BFGS fit: nnexp's numpy objective, torch's autograd objective, scikit-learn's estimator."""
    from unittest import mock

    from nnexp.data.loading import load_data

    print("\nOne L-BFGS fit (best of", repeats, "alternating; fit seconds; iterations in brackets):")
    print(f"  {'fit':28} {'nnexp numpy':>12} {'nnexp torch':>12} {'sk 1 thread':>12} {'sk default':>12} | "
          f"{'torch/numpy':>11} {'numpy/sk 1':>10} {'numpy/sk def':>12}")
    for name, (overrides, params) in LBFGS_FITS.items():
        with initialize_config_module("nnexp.configs", **hydra_version_base()):
            bundle = load_data(compose("train", overrides=[*overrides, "optim=lbfgs"]).data)
        scaler = make_fit_data(bundle).feature_scaler  # nnexp's scaling of the training rows, where the data config scales
        X_train = scaler.transform(bundle.X_train) if scaler is not None else bundle.X_train
        times: dict[str, list[tuple[float, int]]] = {}
        for _ in range(repeats):
            for way in ("numpy", "torch", "sk1", "skdefault"):
                if way in ("numpy", "torch"):
                    patch = (mock.patch("nnexp.training.numpy_objective.dense_objective", return_value=None)
                             if way == "torch" else contextlib.nullcontext())
                    with patch:
                        fit = nnexp_fit(overrides[0].split("=")[1], [*overrides[1:], "optim=lbfgs"], out)
                    times.setdefault(way, []).append((fit["seconds"], fit["epochs"]))
                    continue
                model = MLPClassifier(solver="lbfgs", **params)
                limits = threadpool_limits(1) if way == "sk1" else contextlib.nullcontext()
                with limits, warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    started = time.perf_counter()
                    model.fit(X_train, bundle.y_train)
                    times.setdefault(way, []).append((time.perf_counter() - started, model.n_iter_))
        best = {way: min(runs) for way, runs in times.items()}
        cells = " ".join(f"{best[way][0]:7.3f} ({best[way][1]:3d})" for way in ("numpy", "torch", "sk1", "skdefault"))
        parted = [way for way in ("numpy", "torch") if {n for _, n in times[way]} != {n for _, n in times["sk1"]}]
        print(f"  {name:28} {cells} | {best['torch'][0] / best['numpy'][0]:10.2f}x {best['numpy'][0] / best['sk1'][0]:9.2f}x "
              f"{best['numpy'][0] / best['skdefault'][0]:11.2f}x" + (f"  iterations differ from scikit-learn's: {', '.join(parted)}" if parted else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-cli", action="store_true")
    parser.add_argument("--cli-only", action="store_true", help="only the CLI wall times")
    parser.add_argument("--busy", action="store_true", help="add the busy-machine section")
    parser.add_argument("--busy-only", action="store_true", help="only the busy-machine section")
    parser.add_argument("--lbfgs-objective", action="store_true", help="only one L-BFGS fit's three objectives")
    args = parser.parse_args()
    set_up_process()  # as the nnexp command does
    warnings.filterwarnings("ignore")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; scikit-learn BLAS pinned to 1 thread\n")
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        if not args.cli_only:
            nnexp_fit("breast_cancer", ["trainer.max_epochs=2"], out)  # warm-up: first-use costs
        if args.lbfgs_objective:
            lbfgs_objective_section(args.repeats, out)
            return
        if not (args.busy_only or args.cli_only):
            print(f"{'dataset':14} {'solver':6} | {'sk acc':>7} {'nnexp acc':>9} {'diff':>6} | {'sk fit s':>8} {'nnexp fit s':>11} "
                  f"{'ratio':>6} | {'sk ep':>5} {'nx ep':>5}")
            for name in DATASETS:
                for solver, spec in SOLVERS.items():
                    sk = best_of(args.repeats, lambda: sklearn_fit(name, solver))
                    nx = best_of(args.repeats, lambda: nnexp_fit(name, spec["nnexp"], out))
                    print(
                        f"{name:14} {solver:6} | {sk['test']:7.4f} {nx['test']:9.4f} {100 * (nx['test'] - sk['test']):+5.1f}p | "
                        f"{sk['seconds']:8.3f} {nx['seconds']:11.3f} {nx['seconds'] / sk['seconds']:5.2f}x | {sk['epochs']:5d} {nx['epochs']:5d}"
                    )
            print("\nEpoch loop, exactly 200 Adam epochs (stopping=none), nnexp fit against a plain PyTorch loop:")
            for name in DATASETS:
                nx = best_of(args.repeats, lambda: nnexp_fit(name, ["stopping=none", "trainer.max_epochs=200"], out))
                plain = best_of(args.repeats, lambda: plain_loop(name, 200))
                print(
                    f"  {name:14} nnexp {nx['seconds']:.3f} s  plain loop {plain['seconds']:.3f} s  "
                    f"ratio {nx['seconds'] / plain['seconds']:.2f}x  (nnexp in-process run incl. data and writing: {nx['wall']:.3f} s)"
                )
        if (args.busy or args.busy_only) and not args.cli_only:
            busy_section(args.repeats, out)
    if not args.no_cli and not args.busy_only:
        print("\nCLI wall time from the shell (best of 3, alternating):")
        with tempfile.TemporaryDirectory(prefix="nw", dir="/tmp") as warm_folder:  # a private warm server
            cold_env = {key: value for key, value in os.environ.items() if key != "NNEXP_WARM"}
            warm_env = {**cold_env, "NNEXP_WARM": "1", "NNEXP_WARM_DIR": warm_folder}
            subprocess.run([program("nnexp-warm"), "start"], env=warm_env, check=True, capture_output=True)
            try:
                default = warm = sklearn = float("inf")
                for _ in range(3):  # alternated, so that drift hits all alike
                    default = min(default, cli_wall(["quiet=false"], 1, env=cold_env))
                    warm = min(warm, cli_wall(["quiet=false"], 1, env=warm_env))
                    sklearn = min(sklearn, cli_wall(["-c", SKLEARN_SCRIPT], 1, name="python", env=cold_env))
                warm_typo = cli_wall(["solverr=lbfgs"], 3, check=False, env=warm_env)
            finally:
                subprocess.run([program("nnexp-warm"), "stop"], env=warm_env, capture_output=True)
        print(f"  nnexp (the default run)                     {default:.2f} s")
        print(f"  the same, NNEXP_WARM=1 (a warm server)      {warm:.2f} s")
        print(f"  the same fit as a scikit-learn script       {sklearn:.2f} s   nnexp / script {default / sklearn:.2f}x, "
              f"warm / script {warm / sklearn:.2f}x")
        print(f"  nnexp solverr=lbfgs (a misspelt key)        {cli_wall(['solverr=lbfgs'], 3, check=False, env=cold_env):.2f} s, "
              f"warm {warm_typo:.2f} s")
        print(f"  nnexp --help                                {cli_wall(['--help'], 3, env=cold_env):.2f} s")


if __name__ == "__main__":
    main()
