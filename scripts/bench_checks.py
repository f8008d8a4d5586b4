"""Cost of nnexp's input checks.

Start-up: the default run's `mode=validate` wall time, this tree side by side with another
(``--base DIR``, a checkout of the unchanged code), alternating runs, and the checks alone, in
this process. The grid (``--grid``): the lecture's 280-fit batched grid (``sweep=alpha_grid
optim=adam seed=range(0,8)``: 56 jobs of 5 folds) run in this process, each check function timed
where the sweep calls it (each job's config, validation split and folds, the memory estimates,
the divergence references, the folder names), and the data loading (not a check, shown beside
them: it includes the CSV and cache checks), against the sweep's wall time.

    python scripts/bench_checks.py --base /tmp/trust-base --runs 7
    python scripts/bench_checks.py --grid --runs 3
    python scripts/bench_checks.py --grid --base /tmp/trust-base --runs 6
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
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


# The check functions a sweep calls, as (module, name): each is timed wherever it was imported.
GRID_CHECKS = [
    ("nnexp.config", "check_config"),  # every value, key, type, rule, pairing and name of a job's config
    ("nnexp.data.bundle", "fit_validation_fraction"),  # the validation split against the data
    ("nnexp.data.bundle", "check_folds"),  # cv against the smallest class
    ("nnexp.resources", "check_fits"),  # the memory estimate, before each network is built
    ("nnexp.training.stopping", "divergence_reference"),  # the trivial predictor's loss, per member
    ("nnexp.hydra_integration.folder_names", "refuse_names_outside_roots"),
]
GRID = ["-m", "sweep=alpha_grid", "optim=adam", "seed=range(0,8)", "logger=none", "plots=false"]  # as bench_sweep.py runs it


def timing(functions: list[tuple[str, str]], seconds: dict[str, float], calls: dict[str, int]) -> None:
    """Wrap each function, in its module and in every loaded module that imported it, so that the
    outermost call of any of them adds its wall time (a check that calls another counts once)."""
    import importlib

    depth = [0]
    for module_name, name in functions:
        original = getattr(importlib.import_module(module_name), name)

        def timed(*args, __original=original, __name=name, **kwargs):
            depth[0] += 1
            started = time.perf_counter()
            try:
                return __original(*args, **kwargs)
            finally:
                depth[0] -= 1
                if depth[0] == 0:
                    seconds[__name] = seconds.get(__name, 0.0) + time.perf_counter() - started
                    calls[__name] = calls.get(__name, 0) + 1

        functools.update_wrapper(timed, original)
        for module in list(sys.modules.values()):
            if getattr(module, "__name__", "").startswith("nnexp") and getattr(module, name, None) is original:
                setattr(module, name, timed)


def grid(runs: int) -> None:
    """The 280-fit grid in this process, ``runs`` times; the checks' share of each sweep's wall time."""
    from hydra.core.global_hydra import GlobalHydra

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_sweep import wait_for_background_drawing

    from nnexp import command
    import nnexp.batched.launch, nnexp.batched.lbfgs, nnexp.batched.trainer, nnexp.fit, nnexp.plan  # noqa: E401,F401
    import nnexp.training.module  # noqa: F401  (imported before the wrapping, so that their names are wrapped)

    for run in range(runs):
        seconds: dict[str, float] = {}
        calls: dict[str, int] = {}
        timing(GRID_CHECKS, seconds, calls)
        loading: dict[str, float] = {}
        timing([("nnexp.data.loading", "load_data")], loading, {})
        with tempfile.TemporaryDirectory() as folder:
            GlobalHydra.instance().clear()
            sys.argv = ["nnexp", *GRID, f"hydra.sweep.dir={folder}/sweep", f"paths.store_dir={folder}/store"]
            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                command.run()
            wall = time.perf_counter() - started
            wait_for_background_drawing(Path(folder, "sweep"))  # the sweep's figures, drawn after it returns (untimed)
            fits = sum(1 for _ in Path(folder, "sweep").glob("[0-9]*/metrics.json"))
        checks = sum(seconds.values())
        parts = ", ".join(f"{name} {1000 * value:.0f} ms / {calls[name]} calls" for name, value in seconds.items())
        print(f"grid run {run + 1}: {fits} jobs, sweep {wall:.2f} s, checks {1000 * checks:.0f} ms "
              f"({100 * checks / wall:.2f}% of the sweep): {parts}; data loading {1000 * sum(loading.values()):.0f} ms",
              flush=True)


def grid_configs() -> list:
    """The 56 job configs of the 280-fit grid, composed as its sweep composes them."""
    from hydra import compose, initialize_config_module

    alphas = ["1e-3", "1e-2", "1e-1", "1", "10", "100", "1000"]
    with initialize_config_module("nnexp.configs", version_base="1.3"):
        return [compose("train", overrides=["sweep=alpha_grid", "optim=adam", f"seed={seed}", f"regularization.alpha={alpha}",
                                            "logger=none", "plots=false"])
                for seed in range(8) for alpha in alphas]


def check_config_over_the_grid(repeats: int = 5) -> None:
    """Print the milliseconds ``check_config`` takes over the grid's 56 job configs (median of ``repeats``,
    after a first pass), in the nnexp that this process imports."""
    from nnexp.config import check_config

    configs = grid_configs()
    times = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        for cfg in configs:
            check_config(cfg)
        times.append(time.perf_counter() - started)
    print(f"{1000 * statistics.median(times[1:]):.1f}")


def grid_side_by_side(base: Path, runs: int) -> None:
    """``check_config`` over the grid's job configs, this tree against ``base``, alternating processes."""
    times: dict[str, list[float]] = {"this": [], "base": []}
    for run in range(runs):
        for name, tree in (("this", HERE), ("base", base)) if run % 2 else (("base", base), ("this", HERE)):
            done = subprocess.run([sys.executable, __file__, "--check-config-only"], env={**os.environ, "PYTHONPATH": str(tree)},
                                  check=True, capture_output=True, text=True)
            times[name].append(float(done.stdout.strip().splitlines()[-1]))
    this, before = statistics.median(times["this"]), statistics.median(times["base"])
    print(f"check_config over the grid's 56 job configs, median of {runs} processes: this {this:.0f} ms "
          f"({this / 56:.2f} ms a job), base {before:.0f} ms ({before / 56:.2f} ms a job), difference {this - before:+.0f} ms; "
          f"each process: this {', '.join(f'{t:.0f}' for t in times['this'])}, base {', '.join(f'{t:.0f}' for t in times['base'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", type=Path, help="a checkout of the code to compare with")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--grid", action="store_true", help="the checks' share of the 280-fit batched grid "
                        "(with --base: check_config over its job configs, side by side)")
    parser.add_argument("--check-config-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.check_config_only:
        return check_config_over_the_grid()
    if args.grid:
        return grid_side_by_side(args.base, args.runs) if args.base else grid(args.runs)
    if args.base is None:
        parser.error("--base DIR: a checkout of the code to compare with (or --grid)")
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
