"""What live sweep progress costs: the 280-fit batched grid (bench_sweep.py's Adam grid, 7 alphas x
8 seeds x 5 folds, batched launcher, with its refit) with the progress display off, as plain lines
(a log or a pipe) and as a rich live line (a terminal, forced with FORCE_COLOR), in interleaved
rounds in this one process (each round runs the three in a rotated order, so that a drift in the
machine's load falls on each). Prints each sweep's wall time, then each display against off as
ratios: best against best, and the median of the rounds' ratios (target <= 1.01x).

On a shared machine the sweeps' spread can swamp 1%, so the script also times the display's own
work, with no sweep around it: what it does per job (reading the job's status and objective,
counting it, printing its line or updating the live one) over the 56 job dirs of a finished
sweep, and for the live line its refreshes (4 a second for the sweep's duration); it prints that
work as a share of the sweep's wall time.

    python scripts/bench_progress.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sweep import nnexp_grid  # noqa: E402  (the same grid, run through the console entry point)

VARIANTS = {"off": ("~hydra.callbacks.progress",), "plain lines": (), "live line": ()}
REFRESHES_PER_SECOND = 4  # SweepProgress's live line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    names = list(VARIANTS)
    rounds: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        nnexp_grid("batched", root / "warmup", "trainer.max_epochs=1", "regularization.alpha=1,10", optim="adam")
        for repeat in range(args.repeats):
            walls = {}
            for name in names[repeat % 3:] + names[:repeat % 3]:
                if name == "live line":
                    os.environ["FORCE_COLOR"] = "1"  # rich treats the output as a terminal
                try:
                    result = nnexp_grid("batched", root, "seed=range(0,8)", *VARIANTS[name], optim="adam", tag=f"_{name[:4]}{repeat}")
                finally:
                    os.environ.pop("FORCE_COLOR", None)
                walls[name] = result["wall"]
                print(f"round {repeat + 1}, {name:11}: {result['wall']:7.2f} s ({result['n_jobs']} jobs, 280 fits + refit)", flush=True)
            rounds.append(walls)
        sweep_dir = root / "sweep_batched_off0"
        plain, live = job_cost(sweep_dir, terminal=False), job_cost(sweep_dir, terminal=True)
        refresh = refresh_cost(sweep_dir)
    best = {name: min(walls[name] for walls in rounds) for name in names}
    for name in ("plain lines", "live line"):
        median = statistics.median(walls[name] / walls["off"] for walls in rounds)
        print(f"{name:11} / off: best {best[name]:.2f} s / {best['off']:.2f} s = {best[name] / best['off']:.3f}x, "
              f"median of rounds {median:.3f}x (target <= 1.01x)")
    sweep = best["off"]
    live_work = 56 * live + REFRESHES_PER_SECOND * sweep * refresh
    print(f"the display's own work, plain lines: {1000 * plain:.3f} ms a job, {56 * plain:.3f} s for the 56 jobs = "
          f"{100 * 56 * plain / sweep:.3f}% of the sweep")
    print(f"the display's own work, live line: {1000 * live:.3f} ms a job and {1000 * refresh:.3f} ms a refresh, "
          f"{live_work:.3f} s over the sweep = {100 * live_work / sweep:.3f}% of it")


def finished_jobs(sweep_dir: Path) -> list:
    """Each job's Hydra config, as the callback gets it at the job's end."""
    from omegaconf import OmegaConf

    configs = []
    for path in sorted(sweep_dir.glob("[0-9]*/.hydra/hydra.yaml"), key=lambda p: int(p.parent.parent.name)):
        config = OmegaConf.create({"hydra": OmegaConf.load(path).hydra})
        config.hydra.runtime.output_dir = str(path.parent.parent)
        configs.append(config)
    return configs


def job_cost(sweep_dir: Path, terminal: bool, rounds: int = 20) -> float:
    """Seconds the progress callback spends per job, over a real sweep's job dirs (to a buffer; a
    terminal's live line or plain lines)."""
    from hydra.core.utils import JobReturn, JobStatus
    from rich.console import Console

    from nnexp.progress import SweepProgress

    configs = finished_jobs(sweep_dir)
    returned = JobReturn(status=JobStatus.COMPLETED, _return_value=0.9)
    spent = 0.0
    for _ in range(rounds):
        progress = SweepProgress()
        progress.start(len(configs), console=Console(file=io.StringIO(), width=120, force_terminal=terminal))
        started = time.perf_counter()
        for config in configs[:-1]:  # the last one stops the display
            progress.on_job_end(config, returned)
        spent += time.perf_counter() - started
        progress.stop()
    return spent / (rounds * (len(configs) - 1))


def refresh_cost(sweep_dir: Path, refreshes: int = 2000) -> float:
    """Seconds one refresh of the live line takes (rendering it to a terminal)."""
    from rich.console import Console

    from nnexp.progress import SweepProgress

    progress = SweepProgress()
    progress.start(len(finished_jobs(sweep_dir)), console=Console(file=io.StringIO(), width=120, force_terminal=True))
    started = time.perf_counter()
    for _ in range(refreshes):
        progress.live.refresh()
    spent = time.perf_counter() - started
    progress.stop()
    return spent / refreshes


if __name__ == "__main__":
    main()
