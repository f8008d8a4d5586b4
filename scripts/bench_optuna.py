"""Optuna's pruners on the optuna_mlp search space: what pruning saves, and what the sweep costs.

Breast cancer, ``sweep=optuna_mlp`` (TPE over alpha, learning rate and width, 3-fold CV), 40
trials, one study per variant, side by side in this one process, each in a fresh sqlite file:
  - no pruning;
  - ``hydra.sweeper.pruner=successive_halving``;
  - ``hydra.sweeper.pruner=median``;
  - the same with ``launcher=batched hydra.sweeper.n_jobs=8``: eight trials at a time as one stack,
    each member reporting to its own trial (TPE then sees trials in batches of eight).
Prints, per variant: total epochs trained (every fold of every trial), wall time, the per-trial
sweep overhead (wall minus the sum of the fits, per trial: asking, launching, recording, telling,
the summary; until the command returns, the report's figures being drawn by a detached process,
which the script waits for before the next variant), the best CV score, and the test score of the best trial's config refitted on the
whole training split. Ratios are against the unpruned study. With ``--seeds K`` every variant
runs K studies (sampler seeds 0..K-1, variants interleaved seed by seed) and the table gives their
means: one study's best CV score depends on which configurations TPE happened to try, so a single
pair of studies says little about what pruning costs. A 2-trial warm-up study runs first so that
no variant pays the imports.

    python scripts/bench_optuna.py [--trials 40] [--seeds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from hydra.core.global_hydra import GlobalHydra

VARIANTS = {  # label: (pruner, more overrides)
    "no pruning": ("none", []),
    "successive halving": ("successive_halving", []),
    "median": ("median", []),
    "median, batched x8": ("median", ["launcher=batched", "hydra.sweeper.n_jobs=8"]),
}


def run_study(folder: Path, pruner: str, trials: int, extra: list[str], seed: int = 0) -> dict:
    """Run one study in ``folder``; return its measurements."""
    from nnexp import cli
    from nnexp.plots.background import wait_for_drawing
    from nnexp.studies.storage import open_study
    from nnexp.sweeps.refit import refit_best

    os.chdir(folder)
    GlobalHydra.instance().clear()
    sys.argv = ["nnexp", "-m", "sweep=optuna_mlp", "data=breast_cancer", f"hydra.sweeper.n_trials={trials}",
                f"hydra.sweeper.pruner={pruner}", f"hydra.sweeper.sampler.seed={seed}", "hydra.sweep.dir=sweep", "quiet=true", "logger=none",
                "hydra/hydra_logging=none", "hydra/job_logging=none", *extra]
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        cli.main()
    wall = time.perf_counter() - started  # until the command returns, as a user sees it
    wait_for_drawing(folder / "sweep")  # the report's figures, drawn by a detached process: not timed
    jobs = [json.loads(path.read_text()) for path in (folder / "sweep").glob("*/metrics.json")]
    epochs = sum(sum(fold["epochs"] for fold in job.get("folds", [])) for job in jobs)
    fits = sum(job.get("fit_seconds", 0.0) for job in jobs)
    study = open_study("nnexp_mlp", "sqlite:///nnexp_optuna.db")
    best = study.best_trial
    with contextlib.redirect_stdout(io.StringIO()):
        refit = refit_best(Path(best.user_attrs["nnexp"]["job_dir"]), folder / "refit")
    states = [t.state.name for t in study.trials]
    return {
        "trials": len(states), "pruned": states.count("PRUNED"), "failed": states.count("FAIL"), "epochs": epochs,
        "wall": wall, "overhead_ms": 1000 * (wall - fits) / len(states), "best_cv": best.value,
        "test": refit.fit.test_score, "best": best.number,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=1, help="studies per variant (sampler seeds 0..K-1)")
    parser.add_argument("--pruner", action="append", default=[], metavar="LABEL=PRUNER",
                        help="an extra variant: a preset name or a {_target_: ...} override value, e.g. "
                             "'sh20={_target_:optuna.pruners.SuccessiveHalvingPruner,min_resource:20}'")
    parser.add_argument("--only", help="comma-separated variant labels to run (the unpruned study always runs)")
    parser.add_argument("extra", nargs="*", help="more overrides for every study, e.g. trainer.max_epochs=100")
    args = parser.parse_args()
    from nnexp.process import set_up_process

    set_up_process()
    home = Path.cwd()
    variants = dict(VARIANTS)
    for item in args.pruner:
        label, _, pruner = item.partition("=")
        variants[label] = (pruner, [])
    if args.only:
        variants = {k: v for k, v in variants.items() if k == "no pruning" or k in args.only.split(",")}
    runs: dict[str, list[dict]] = {label: [] for label in variants}
    with tempfile.TemporaryDirectory() as root:
        warm = Path(root) / "warm-up"
        warm.mkdir()
        run_study(warm, "none", 2, ["data=iris", "trainer.max_epochs=5", *args.extra])
        for seed in range(args.seeds):
            for number, (label, (pruner, overrides)) in enumerate(variants.items()):
                folder = Path(root) / f"{number}-{seed}"
                folder.mkdir()
                runs[label].append(run_study(folder, pruner, args.trials, [*overrides, *args.extra], seed))
    os.chdir(home)
    results = {label: {key: mean([r[key] for r in rs]) for key in rs[0]} for label, rs in runs.items()}
    base = results["no pruning"]
    print(f"optuna_mlp on breast_cancer, {args.trials} trials per study (TPE, 3-fold CV), sqlite storage, "
          f"{args.seeds} stud{'y' if args.seeds == 1 else 'ies'} per variant" + (" (means)" if args.seeds > 1 else ""))
    print(f"{'variant':<20}{'pruned':>7}{'epochs':>9}{'x fewer':>9}{'wall s':>9}{'x faster':>10}"
          f"{'overhead ms/trial':>19}{'best CV':>9}{'test':>8}")
    for label, r in results.items():
        print(f"{label:<20}{r['pruned']:>7.1f}{r['epochs']:>9.0f}{base['epochs'] / r['epochs']:>9.2f}{r['wall']:>9.1f}"
              f"{base['wall'] / r['wall']:>10.2f}{r['overhead_ms']:>19.0f}{r['best_cv']:>9.4f}{r['test']:>8.4f}")
    for label, r in list(results.items())[1:]:
        per_seed = ", ".join(f"{100 * (a['best_cv'] - b['best_cv']):+.2f}" for a, b in zip(runs[label], runs["no pruning"]))
        print(f"{label}: {base['epochs'] / r['epochs']:.2f}x fewer epochs, best CV "
              f"{100 * (r['best_cv'] - base['best_cv']):+.2f} points against no pruning (per seed: {per_seed})")
    overheads = [r["overhead_ms"] for rs in runs.values() for r in rs]
    print(f"overhead per trial over all {len(overheads)} studies: {min(overheads):.0f}-{max(overheads):.0f} ms")


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


if __name__ == "__main__":
    main()
