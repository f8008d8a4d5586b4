"""What the fsyncs of results and store entries cost on the 280-fit batched grid (bench_sweep.py's
"nnexp adam batched, 8 seeds": alpha grid x 5 folds x 8 seeds, Adam, plus the refit), in three
variants run in turn, in this one process, each round in a rotated order:

- "together": as nnexp does it, a job's new files renamed into place at once and their data
  synced, with their folder's, all together (concurrently) before the rename of the metrics.json
  that marks them finished, then the folder once more (``durable.job_syncs_together``); store
  entries hard-linked from the run dir, their manifest and folder synced together;
- "one by one": as before, each file's data synced before its rename, one after another, the
  folder once before metrics.json and once after;
- "none": the fsyncs turned off.

It prints each run's wall time and the wall time spent inside ``durable.sync`` (the concurrent
syncs count once), then per variant the median and best walls, their ratios to "none", the median
time in syncs as a share of "none"'s median wall (the least noisy figure on a shared machine), and
the files and folders synced per grid; and the load average.

    python scripts/bench_fsync.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sweep import nnexp_grid  # noqa: E402

from nnexp import durable  # noqa: E402

VARIANTS = ("together", "one by one", "none")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    real_sync, real_put_off = durable.sync, durable.data_sync_put_off
    spent = {"seconds": 0.0, "files": 0, "folders": 0}

    def one_by_one(files=(), folders=()):
        for path in files:
            real_sync(files=[path])
        for path in folders:
            real_sync(folders=[path])

    def timed(sync):
        def call(files=(), folders=()):
            files, folders = list(files), list(folders)
            started = time.perf_counter()
            sync(files, folders)
            spent["seconds"] += time.perf_counter() - started
            spent["files"] += len(files)
            spent["folders"] += len(folders)
        return call

    def use(variant: str) -> None:
        durable.sync, durable.data_sync_put_off = real_sync, real_put_off
        if variant == "none":
            durable.sync = lambda files=(), folders=(): None
        elif variant == "one by one":
            durable.sync, durable.data_sync_put_off = timed(one_by_one), lambda path: False
        else:
            durable.sync = timed(real_sync)

    walls = {variant: [] for variant in VARIANTS}
    inside = {variant: [] for variant in VARIANTS}
    counts = {variant: (0, 0) for variant in VARIANTS}
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        nnexp_grid("batched", Path(folder) / "warm", "trainer.max_epochs=1", "regularization.alpha=1,10", optim="adam")
        for round_ in range(args.rounds):
            order = VARIANTS[round_ % 3:] + VARIANTS[:round_ % 3]
            for variant in order:
                use(variant)
                spent.update(seconds=0.0, files=0, folders=0)
                tag = f"_{round_}_{variant.replace(' ', '_')}"
                result = nnexp_grid("batched", Path(folder), "seed=range(0,8)", optim="adam", tag=tag)
                walls[variant].append(result["wall"])
                inside[variant].append(spent["seconds"])
                counts[variant] = (spent["files"], spent["folders"])
                print(f"round {round_} {variant:8}: {result['wall']:7.2f} s, {spent['seconds']:5.2f} s in "
                      f"{spent['files']} file + {spent['folders']} folder fsyncs ({result['n_jobs']} jobs); "
                      f"load {os.getloadavg()[0]:.2f}", flush=True)
    durable.sync, durable.data_sync_put_off = real_sync, real_put_off
    base_median, base_best = statistics.median(walls["none"]), min(walls["none"])
    print()
    for variant in VARIANTS:
        median, best = statistics.median(walls[variant]), min(walls[variant])
        line = f"{variant:8}: median {median:7.2f} s ({median / base_median:.3f}x none), best {best:7.2f} s ({best / base_best:.3f}x none)"
        if variant != "none":
            in_fsync = statistics.median(inside[variant])
            line += (f"; in syncs {in_fsync:5.2f} s = {100 * in_fsync / base_median:.2f}% of none's median;"
                     f" {counts[variant][0]} file + {counts[variant][1]} folder fsyncs")
        print(line)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
