"""nnexp.run in a warm process against the fit time the CLI reports for the same run.

The default experiment (breast cancer, MLP [100], Adam, 200 epochs), ``--repeats`` rounds after
one first call that pays the imports. Each round runs it once through the ``nnexp`` command (a
subprocess: its metrics.json gives the fit time the command reports) and once through
``nnexp.run()`` in this process, the order alternating between rounds so that a drift in the
machine's load falls on both. Prints each round, then as ratios: the warm call's wall time
against the CLI's fit (best against best, and the median of the rounds' ratios; target <= 1.2x),
the call's fit against the CLI's fit (is a fit in this process slower?), and the call's wall time
against its own fit (what the API adds), with the modules a warm call imported (none expected).
Each run draws its figures in a background process; the script waits, outside the timed region,
until that process has exited (not only finished drawing: its interpreter's teardown would
otherwise overlap the next run's fit, which is the API's when the CLI went first).

    python scripts/bench_api.py [--repeats 5]
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
from pathlib import Path


def wait_for_drawing_process(run_dir: Path) -> None:
    """Until the process drawing ``run_dir``'s figures has exited."""
    from nnexp.plots.background import MARKER, running, wait_for_drawing

    try:
        pid = int((Path(run_dir) / MARKER).read_text())
    except (OSError, ValueError):
        return
    wait_for_drawing(Path(run_dir))
    while running(pid):
        time.sleep(0.02)


def cli_run(nnexp_command: Path, run_dir: str) -> dict:
    """The ``nnexp`` command's default run: the fit time it reports, and its wall time."""
    started = time.perf_counter()
    subprocess.run([str(nnexp_command), f"hydra.run.dir={run_dir}"], check=True, capture_output=True,
                   env={**os.environ, "NNEXP_WARM": "0"})
    wall = time.perf_counter() - started
    wait_for_drawing_process(Path(run_dir))
    return {"fit": json.loads(Path(run_dir, "metrics.json").read_text())["fit_seconds"], "wall": wall}


def api_run() -> dict:
    """One nnexp.run() of the default run: its wall time, its own fit time and the modules it imported."""
    import nnexp

    before = set(sys.modules)
    with contextlib.redirect_stdout(io.StringIO()):
        started = time.perf_counter()
        run = nnexp.run()
        wall = time.perf_counter() - started
    imported = len(set(sys.modules) - before)
    wait_for_drawing_process(run.dir)
    return {"wall": wall, "fit": run.record.fit.fit_seconds, "imported": imported}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    nnexp_command = Path(sys.executable).parent / "nnexp"
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        first = api_run()
        print(f"first call: {first['wall']:.2f} s, imports {first['imported']} modules, its fit {first['fit']:.2f} s", flush=True)
        rounds = []
        for number in range(1, args.repeats + 1):
            if number % 2:
                cli, api = cli_run(nnexp_command, f"cli{number}"), api_run()
            else:
                api, cli = api_run(), cli_run(nnexp_command, f"cli{number}")
            rounds.append((cli, api))
            print(f"round {number}: CLI fit {cli['fit']:.2f} s (command {cli['wall']:.2f} s); nnexp.run {api['wall']:.2f} s, "
                  f"its fit {api['fit']:.2f} s: {api['wall'] / cli['fit']:.2f}x the CLI's fit; "
                  f"{api['imported']} modules imported", flush=True)
    best_cli, best_api = min(cli["fit"] for cli, _ in rounds), min(api["wall"] for _, api in rounds)
    median = lambda ratios: statistics.median(ratios)  # noqa: E731
    print(f"nnexp.run wall / CLI fit:  best {best_api:.2f} s / {best_cli:.2f} s = {best_api / best_cli:.3f}x, "
          f"median of rounds {median([api['wall'] / cli['fit'] for cli, api in rounds]):.3f}x (target <= 1.2x)")
    print(f"nnexp.run fit / CLI fit:   median of rounds {median([api['fit'] / cli['fit'] for cli, api in rounds]):.3f}x")
    print(f"nnexp.run wall / own fit:  median of rounds {median([api['wall'] / api['fit'] for _, api in rounds]):.3f}x "
          f"(the API's own cost: median {median([api['wall'] - api['fit'] for _, api in rounds]):.2f} s a call)")
    print(f"modules imported by warm calls: {sum(api['imported'] for _, api in rounds)}")


if __name__ == "__main__":
    main()
