"""Start-up cost of nnexp's input checks: the default run's `mode=validate` wall time, this tree
side by side with another (``--base DIR``, a checkout of the unchanged code), alternating runs,
and the checks alone, in this process.

    python scripts/bench_checks.py --base /tmp/trust-base --runs 7
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
COMMAND = ["-c", "import sys; from nnexp.cli import main; sys.argv[0] = 'nnexp'; main()",
           "mode=validate", "quiet=true", "plots=false", "logger=none"]


def wall(tree: Path, folder: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    started = time.perf_counter()
    subprocess.run([sys.executable, *COMMAND, f"hydra.run.dir={folder}"], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def checks_alone(repeats: int = 20) -> float:
    """Seconds per call of the checks this tree runs on the default config (after a first, cached call)."""
    from hydra import compose, initialize_config_module

    from nnexp.compat import hydra_version_base
    from nnexp.config import check_config
    from nnexp.config_files import command_line_path_names
    from nnexp.data.loading import load_data
    from nnexp.resources import check_fits
    from nnexp.training.stopping import divergence_reference

    with initialize_config_module("nnexp.configs", **hydra_version_base()):
        cfg = compose("train", overrides=["mode=validate"])
    bundle = load_data(cfg.data)
    from functools import partial

    from nnexp.models.mlp import MLP

    model = partial(MLP, hidden_sizes=list(cfg.model.hidden_sizes))
    check_config(cfg)
    started = time.perf_counter()
    for _ in range(repeats):
        check_config(cfg)
        command_line_path_names(["mode=validate"])
        check_fits(model, bundle.input_shape, bundle.n_outputs)
        divergence_reference(bundle.task if bundle.task == "regression" else "binary", bundle.y_train)
    return (time.perf_counter() - started) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", type=Path, required=True, help="a checkout of the code to compare with")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"this": [], "base": []}
    with tempfile.TemporaryDirectory() as folder:
        for run in range(args.runs):
            for name, tree in (("this", HERE), ("base", args.base)) if run % 2 else (("base", args.base), ("this", HERE)):
                times[name].append(wall(tree, f"{folder}/{name}{run}"))
    this, base = statistics.median(times["this"]), statistics.median(times["base"])
    print(f"default run, mode=validate, median of {args.runs}: this {this:.3f} s, base {base:.3f} s, "
          f"difference {1000 * (this - base):+.0f} ms, ratio {this / base:.3f}")
    print(f"the checks alone, in process: {1000 * checks_alone():.2f} ms per run")


if __name__ == "__main__":
    main()
