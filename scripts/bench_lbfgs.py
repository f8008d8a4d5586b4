"""Batched L-BFGS against one fit at a time, by network size: where a stack pays.

Breast cancer, 5-fold CV, two alphas (10 fits per width), ``optim=lbfgs``, no refit. In this one
process, side by side for each hidden-layer shape:
  - ``launcher=basic``: one scipy L-BFGS-B fit after another;
  - ``launcher=batched`` with every width stacked (the size rule lifted): each member runs its own
    L-BFGS-B (nnexp.batched.lbfgsb, batched in torch), and the members' evaluations run as one stacked pass.
Prints the parameter count, both wall times, the ratio, and how far the two agree (iterations
per fit, and the largest training-loss difference). ``nnexp.batched.plan``'s
``LBFGS_MAX_STACKED_PARAMETERS`` comes from this table. A tiny sweep runs first so that neither
variant pays the imports.

    python scripts/bench_lbfgs.py [--widths 10 100 500 100,100 1000 200,200 2000]
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

WIDTHS = ["10", "100", "500", "100,100", "1000", "200,200", "2000"]


def sweep(*overrides: str) -> tuple[float, list[dict], bool]:
    """Wall time of ``nnexp -m *overrides refit=false`` in a fresh folder, every fold's metrics,
    and whether every job trained in a stack."""
    from bench_presets import timed_sweep  # scripts/, this script's folder, is on sys.path

    def read(sweep_dir: Path) -> tuple[list[dict], bool]:
        jobs = [json.loads(path.read_text()) for path in sorted(sweep_dir.glob("[0-9]*/metrics.json"))]
        return [fold for job in jobs for fold in job.get("folds", [job])], all(job.get("batched") for job in jobs)

    wall, (folds, stacked) = timed_sweep([*overrides, "refit=false"], read)
    return wall, folds, stacked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", nargs="+", default=WIDTHS, help="hidden sizes, one shape each (comma-separated layers)")
    args = parser.parse_args()
    import nnexp.batched.plan as plan
    from nnexp.process import set_up_process

    set_up_process()
    warnings.filterwarnings("ignore")
    plan.LBFGS_MAX_STACKED_PARAMETERS = float("inf")  # stack every width, to find where it stops paying
    sweep("optim=lbfgs", "data=iris", "regularization.alpha=1,10", "launcher=batched")  # warm-up
    grid = ["optim=lbfgs", "cv=5", "regularization.alpha=1e-4,1"]
    print("breast cancer, 5-fold CV, alpha 1e-4 and 1 (10 L-BFGS fits per row); wall time of each sweep")
    print(f"{'hidden':>10} {'params':>8} {'one by one':>11} {'stacked':>8} {'stacked faster':>15}  agreement")
    for widths in args.widths:
        hidden = f"model.hidden_sizes=[{widths}]"
        basic, reference, _ = sweep(*grid, hidden, "launcher=basic")
        stacked, folds, all_stacked = sweep(*grid, hidden, "launcher=batched")
        assert all_stacked, f"hidden {widths}: a job did not train in a stack"
        same_iterations = all(a["epochs"] == b["epochs"] for a, b in zip(folds, reference))
        gap = max(abs(a["train_loss"] - b["train_loss"]) for a, b in zip(folds, reference))
        sizes = [30, *(int(w) for w in widths.split(",")), 1]
        params = sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))
        print(f"{widths:>10} {params:>8,} {basic:>9.2f} s {stacked:>6.2f} s {basic / stacked:>14.2f}x  "
              f"{'same iterations' if same_iterations else 'iterations differ'}, train loss within {gap:.1e}", flush=True)


if __name__ == "__main__":
    main()
