"""The lecture's grid presets as written, against the previous approach and scikit-learn.

In this one process, side by side (breast cancer, 5-fold CV, refit, wall time of each command):
  - ``nnexp -m sweep=alpha_grid`` and ``sweep=hidden_sizes`` as written (the batched launcher);
  - the same with ``launcher=basic`` (one job at a time: the presets' launcher before);
  - scikit-learn's ``GridSearchCV`` over the same grids (Adam, BLAS on one thread);
  - ``optim=lbfgs`` as written (each member its own L-BFGS-B, batched in torch, evaluations stacked) and
    with ``launcher=basic``, against ``GridSearchCV`` with ``solver="lbfgs"`` (n_jobs None and 2).
Prints the times, the ratios and each one's best parameter. A tiny sweep runs first so that no
variant pays the imports.

With ``--seeds N`` it times only the L-BFGS alpha grid over N seeds (``seed=range(0,N)``: 7 x 5 x N
fits), against ``GridSearchCV`` over the same alphas and ``random_state`` in ``range(N)``.

With ``--budget`` it splits the L-BFGS alpha grid's wall time: the function evaluations scipy makes
for ``GridSearchCV``'s fits against those of nnexp's stacks, and nnexp's time inside its L-BFGS-B
stacks (the refit's too: a batched sweep refits with the stacks) against the rest of the command
(composing, recording, the summary).

    python scripts/bench_presets.py [--repeats 3] [--lbfgs-only | --seeds 8 | --budget]
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

from hydra.core.global_hydra import GlobalHydra

GRIDS = {
    "alpha_grid": ("mlpclassifier__alpha", [1e-3, 1e-2, 1e-1, 1, 10, 100, 1000]),
    "hidden_sizes": ("mlpclassifier__hidden_layer_sizes", [(10,), (50,), (100,), (500,), (10, 10), (50, 50), (100, 100), (500, 500)]),
}


def timed_sweep(overrides, read):
    """Wall time of ``nnexp -m *overrides`` in a fresh folder (no store of an earlier sweep to
    restore from), and ``read(sweep dir)``, taken before the folder goes."""
    from nnexp import cli

    home = Path.cwd()
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        try:
            GlobalHydra.instance().clear()
            sys.argv = ["nnexp", "-m", *overrides, "quiet=true", "logger=none", "plots=false", "hydra/hydra_logging=none",
                        "hydra/job_logging=none", "hydra.sweep.dir=sweep"]
            with contextlib.redirect_stdout(io.StringIO()):
                started = time.perf_counter()
                cli.main()
                wall = time.perf_counter() - started
            return wall, read(Path("sweep"))
        finally:
            os.chdir(home)


def nnexp_sweep(*overrides: str) -> tuple[float, str]:
    """Wall time of ``nnexp -m *overrides`` (:func:`timed_sweep`) and the best row's swept values."""
    wall, rows = timed_sweep(overrides, lambda sweep: list(csv.DictReader((sweep / "summary.csv").open())))
    best = min(rows, key=lambda row: int(row["rank_val_score"]))
    return wall, " ".join(word for word in best["command"].split() if word.startswith(("regularization.alpha=", "model.hidden_sizes=")))


def sklearn_search(preset: str, solver: str = "adam", n_jobs: int | None = None, seeds: int = 0) -> tuple[float, str]:
    """Wall time of GridSearchCV over the preset's grid (5-fold, refit), BLAS on one thread;
    ``seeds``: over ``random_state`` in ``range(seeds)`` too."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV, train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    X, y = load_breast_cancer(return_X_y=True)
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    key, values = GRIDS[preset]
    seed = 1 if solver == "lbfgs" else 0  # the lecture's grids: MLPClassifier(solver='lbfgs', random_state=1), as the presets
    search = GridSearchCV(make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(100,), solver=solver, random_state=seed)),
                          {key: values, **({"mlpclassifier__random_state": list(range(seeds))} if seeds else {})}, cv=5, n_jobs=n_jobs)
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        started = time.perf_counter()
        search.fit(X_train, y_train)
        return time.perf_counter() - started, f"{key.split('__')[1]}={search.best_params_[key]}"


def main() -> None:
    import argparse

    from nnexp.process import set_up_process

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each L-BFGS variant (alternating); the fastest counts")
    parser.add_argument("--lbfgs-only", action="store_true", help="only the L-BFGS grids")
    parser.add_argument("--seeds", type=int, default=0, help="only the L-BFGS alpha grid over this many seeds")
    parser.add_argument("--budget", action="store_true", help="where the L-BFGS alpha grid's time goes, against GridSearchCV's")
    args = parser.parse_args()
    repeats = args.repeats

    set_up_process()
    warnings.filterwarnings("ignore")
    nnexp_sweep("data=iris", "trainer.max_epochs=2", "seed=0,1")  # warm-up
    sklearn_search("alpha_grid", "lbfgs", 2)  # GridSearchCV's two workers up (loky keeps them for the next search)
    print("breast cancer, 5-fold CV, refit; wall time of each command in this process")
    if args.seeds:
        seeded_alpha_grid(args.seeds, repeats)
        return
    if args.budget:
        alpha_grid_budget(repeats)
        return
    for preset in GRIDS if not args.lbfgs_only else ():
        batched, best_batched = nnexp_sweep(f"sweep={preset}")
        basic, best_basic = nnexp_sweep(f"sweep={preset}", "launcher=basic")
        sklearn, best_sklearn = sklearn_search(preset)
        print(f"  sweep={preset} (Adam) as written  {batched:6.2f} s  best {best_batched}")
        print(f"  sweep={preset} launcher=basic    {basic:6.2f} s  best {best_basic}   as written: {basic / batched:.1f}x faster")
        print(f"  GridSearchCV, BLAS 1 thread         {sklearn:6.2f} s  best {best_sklearn}   as written / GridSearchCV: {batched / sklearn:.2f}x")
    print(f"\nthe same grids with optim=lbfgs (scikit-learn: solver='lbfgs'); fastest of {repeats} alternating runs each")
    for preset in GRIDS:
        variants = {
            "as written": lambda: nnexp_sweep(f"sweep={preset}", "optim=lbfgs"),
            "launcher=basic": lambda: nnexp_sweep(f"sweep={preset}", "optim=lbfgs", "launcher=basic"),
            "GridSearchCV n_jobs=None": lambda: sklearn_search(preset, "lbfgs", None),
            "GridSearchCV n_jobs=2": lambda: sklearn_search(preset, "lbfgs", 2),
        }
        runs = {name: [] for name in variants}
        for _ in range(repeats):
            for name, measure in variants.items():
                runs[name].append(measure())
        fastest = {name: min(measured) for name, measured in runs.items()}
        for name, (wall, best) in fastest.items():
            walls = ", ".join(f"{w:.2f}" for w, _ in runs[name])
            print(f"  sweep={preset} {name:26} {wall:6.2f} s  best {best}  [runs: {walls}]")
        sklearn = min(("GridSearchCV n_jobs=None", "GridSearchCV n_jobs=2"), key=lambda name: fastest[name][0])
        print(f"  as written: {fastest['launcher=basic'][0] / fastest['as written'][0]:.2f}x faster than launcher=basic, "
              f"{fastest['as written'][0] / fastest[sklearn][0]:.2f}x the fastest GridSearchCV ({sklearn})")

def seeded_alpha_grid(seeds: int, repeats: int) -> None:
    """The L-BFGS alpha grid over ``seeds`` seeds, as written, against GridSearchCV (n_jobs None and 2)."""
    variants = {
        "as written": lambda: nnexp_sweep("sweep=alpha_grid", f"seed=range(0,{seeds})"),
        "GridSearchCV n_jobs=None": lambda: sklearn_search("alpha_grid", "lbfgs", None, seeds),
        "GridSearchCV n_jobs=2": lambda: sklearn_search("alpha_grid", "lbfgs", 2, seeds),
    }
    runs = {name: [] for name in variants}
    for _ in range(repeats):
        for name, measure in variants.items():
            runs[name].append(measure()[0])
    fits = 7 * 5 * seeds
    for name, walls in runs.items():
        print(f"  sweep=alpha_grid over {seeds} seeds ({fits} fits) {name:26} {min(walls):6.2f} s  [runs: {', '.join(f'{w:.2f}' for w in walls)}]")
    for name in ("GridSearchCV n_jobs=None", "GridSearchCV n_jobs=2"):
        print(f"  as written / {name}: {min(runs['as written']) / min(runs[name]):.2f}x")


def alpha_grid_budget(repeats: int) -> None:
    """The L-BFGS alpha grid as written: scipy's function evaluations for GridSearchCV (35 fits and
    the refit) against the evaluations of nnexp's stacks, and nnexp's wall split into the time in
    its L-BFGS-B stacks and the rest; fastest of ``repeats`` runs each."""
    import scipy.optimize

    import nnexp.batched.lbfgs as stack_lbfgs

    minimize, minimize_stack = scipy.optimize.minimize, stack_lbfgs.minimize_stack
    counts = {"scipy": 0, "stack": 0, "stack_s": 0.0}

    def counted_minimize(*args, **kwargs):  # scikit-learn calls scipy.optimize.minimize once per L-BFGS fit
        result = minimize(*args, **kwargs)
        counts["scipy"] += int(result.nfev)
        return result

    def timed_minimize_stack(*args, **kwargs):
        started = time.perf_counter()
        result = minimize_stack(*args, **kwargs)
        counts["stack_s"] += time.perf_counter() - started
        counts["stack"] += int(result.evaluations.sum())
        return result

    sklearn_walls, nnexp_runs = [], []
    scipy.optimize.minimize, stack_lbfgs.minimize_stack = counted_minimize, timed_minimize_stack
    try:
        for _ in range(repeats):
            counts.update(scipy=0, stack=0, stack_s=0.0)
            sklearn_walls.append(sklearn_search("alpha_grid", "lbfgs", None)[0])
            scipy_evaluations = counts["scipy"]  # read before nnexp runs (a sequential fit of its own would call scipy)
            wall = nnexp_sweep("sweep=alpha_grid")[0]
            nnexp_runs.append((wall, counts["stack_s"], scipy_evaluations, counts["stack"]))
    finally:
        scipy.optimize.minimize, stack_lbfgs.minimize_stack = minimize, minimize_stack
    sklearn = min(sklearn_walls)
    wall, in_stacks, scipy_evaluations, stack_evaluations = min(nnexp_runs)
    print(f"  GridSearchCV, 1 process: {sklearn:.2f} s, {scipy_evaluations} function evaluations "
          f"({1e3 * sklearn / scipy_evaluations:.2f} ms each, the whole search counted)")
    print(f"  nnexp -m sweep=alpha_grid: {wall:.2f} s ({wall / sklearn:.2f}x): {in_stacks:.2f} s in its L-BFGS-B stacks "
          f"({stack_evaluations} member evaluations, {1e3 * in_stacks / stack_evaluations:.2f} ms each), "
          f"{wall - in_stacks:.2f} s the rest of the command")
    print(f"  0.5x one process is {0.5 * sklearn:.2f} s: the rest of the command alone is {(wall - in_stacks) / sklearn:.2f}x")


if __name__ == "__main__":
    main()
