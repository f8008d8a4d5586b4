"""Hydra 1.4 + OmegaConf 2.4 against Hydra 1.3 + OmegaConf 2.3: bench_sweep.py's in-process
(launcher=basic) and batched rows (the L-BFGS alpha grid, 7 x 5-fold CV + refit) and the wall time
of a default ``nnexp`` run, each environment in turn (interleaved, ABBA...), the medians and ratios.

    python scripts/bench_releases.py OLD_PYTHON NEW_PYTHON [--repeats 2]

Each PYTHON is an environment's interpreter with nnexp installed (e.g. /work/.venvs/h13/bin/python).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent


def worker() -> None:
    """In the environment under test: the rows, as one JSON line."""
    sys.path.insert(0, str(HERE))
    from importlib.metadata import version

    from bench_sweep import nnexp_grid

    warnings.filterwarnings("ignore")
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        nnexp_grid("basic", Path(folder) / "warmup", "trainer.max_epochs=1", "regularization.alpha=1,10")
        rows["in-process (launcher=basic)"] = nnexp_grid("basic", Path(folder))["wall"]
        rows["batched (launcher=batched)"] = nnexp_grid("batched", Path(folder))["wall"]
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "nnexp.cli"], cwd=folder, check=True, capture_output=True)
        rows["default run (nnexp, a process)"] = time.perf_counter() - started
    stack = {d: version(d) for d in ("hydra-core", "omegaconf")}
    print(json.dumps({"stack": stack, "rows": rows}))


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        worker()
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    walls: dict[str, dict[str, list[float]]] = {"old": {}, "new": {}}
    stacks = {}
    for repeat in range(args.repeats):
        for side in (("old", "new") if repeat % 2 == 0 else ("new", "old")):
            python = getattr(args, side)
            output = subprocess.run([python, __file__, "--worker"], check=True, capture_output=True, text=True).stdout
            result = json.loads(output.strip().splitlines()[-1])
            stacks[side] = result["stack"]
            for row, wall in result["rows"].items():
                walls[side].setdefault(row, []).append(wall)
            print(f"run {repeat} {side}: " + ", ".join(f"{row} {wall:.2f} s" for row, wall in result["rows"].items()), flush=True)
    print(f"\nold: {stacks['old']}\nnew: {stacks['new']}")
    for row in walls["old"]:
        old, new = statistics.median(walls["old"][row]), statistics.median(walls["new"][row])
        print(f"{row:34} old {old:7.2f} s  new {new:7.2f} s  new / old = {new / old:.3f}")


if __name__ == "__main__":
    main()
