"""nnexp.run in a warm process against the fit time the CLI reports for the same run.

The default experiment (breast cancer, MLP [100], Adam, 200 epochs), ``--repeats`` times: each
time once through the ``nnexp`` command (a subprocess: its metrics.json gives the fit time it
reports) and once through ``nnexp.run()`` in this process, alternately, after one first call
that pays the imports. Prints each warm call's wall time against the CLI's fit time of the same
round and against its own fit time, and the modules a warm call imported (none expected). Each
run draws its figures in a background process, which the script waits for outside the timed region.

    python scripts/bench_api.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def cli_fit(nnexp_command: Path, run_dir: str) -> float:
    """The fit time the ``nnexp`` command reports for the default run."""
    from nnexp.plots.background import wait_for_drawing

    subprocess.run([str(nnexp_command), f"hydra.run.dir={run_dir}"], check=True, capture_output=True)
    wait_for_drawing(Path(run_dir))
    return json.loads(Path(run_dir, "metrics.json").read_text())["fit_seconds"]


def api_call():
    """One nnexp.run() of the default run: (wall seconds, its Run, modules it imported)."""
    import nnexp
    from nnexp.plots.background import wait_for_drawing

    before = set(sys.modules)
    with contextlib.redirect_stdout(io.StringIO()):
        started = time.perf_counter()
        run = nnexp.run()
        wall = time.perf_counter() - started
    imported = set(sys.modules) - before
    wait_for_drawing(run.dir)
    return wall, run, imported


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    nnexp_command = Path(sys.executable).parent / "nnexp"
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        wall, run, imported = api_call()
        print(f"first call   {wall:6.2f} s (imports {len(imported)} modules), its fit {run.record.fit.fit_seconds:.2f} s", flush=True)
        to_cli, to_own = [], []
        for round_ in range(1, args.repeats + 1):
            reported = cli_fit(nnexp_command, f"cli{round_}")
            wall, run, imported = api_call()
            own = run.record.fit.fit_seconds
            to_cli.append(wall / reported)
            to_own.append(wall / own)
            print(f"round {round_}: CLI fit {reported:.2f} s; nnexp.run {wall:.2f} s = {wall / reported:.2f}x the CLI's fit, "
                  f"{wall / own:.2f}x its own ({own:.2f} s); {len(imported)} modules imported", flush=True)
        median = lambda values: sorted(values)[len(values) // 2]  # noqa: E731
        print(f"warm nnexp.run / CLI fit: median {median(to_cli):.2f}x, best {min(to_cli):.2f}x; "
              f"/ own fit: median {median(to_own):.2f}x (target <= 1.2x)")


if __name__ == "__main__":
    main()
