"""What the fsyncs of results and store entries cost on the 280-fit batched grid (bench_sweep.py's
"nnexp adam batched, 8 seeds": alpha grid x 5 folds x 8 seeds, Adam, plus the refit), in three
variants run in turn, in this one process, each round in a rotated order:

- "per job": as nnexp does it, each file's data synced before its rename, a job dir's folder once
  before its metrics.json and once after (``durable.one_folder_sync_each``), and the store entry's
  files hard-linked from the run dir (synced there) rather than copied and synced again;
- "per file": as before, each file's folder synced after its rename, the store's files copied;
- "none": the fsyncs turned off (files linked into the store, as nnexp does).

It prints each run's wall time and the time spent inside the fsyncs, then per variant the median
and best walls, their ratios to "none", the median time in fsyncs as a share of "none"'s median
wall (the least noisy figure on a shared machine), and the fsyncs per grid; and the load average.

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

from nnexp import durable, store  # noqa: E402

VARIANTS = ("per job", "per file", "none")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    real = {name: getattr(durable, name) for name in ("fsync_file", "fsync_folder", "renamed_into", "sync_renames_into")}
    real_linked = store.linked
    spent = {"seconds": 0.0, "fsync_file": 0, "fsync_folder": 0}

    def timed(name):
        def call(path):
            started = time.perf_counter()
            real[name](path)
            spent["seconds"] += time.perf_counter() - started
            spent[name] += 1
        return call

    def use(variant: str) -> None:
        for name, fn in real.items():
            setattr(durable, name, fn)
        store.linked = real_linked
        if variant == "none":
            durable.fsync_file = durable.fsync_folder = lambda path: None
            return
        durable.fsync_file, durable.fsync_folder = timed("fsync_file"), timed("fsync_folder")
        if variant == "per file":  # the folder synced after every rename, nothing put off
            durable.renamed_into = durable.fsync_folder
            durable.sync_renames_into = lambda path: None
            store.linked = lambda source, target: False  # copied into the store, and each copy synced

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
                spent.update(seconds=0.0, fsync_file=0, fsync_folder=0)
                tag = f"_{round_}_{variant.replace(' ', '_')}"
                result = nnexp_grid("batched", Path(folder), "seed=range(0,8)", optim="adam", tag=tag)
                walls[variant].append(result["wall"])
                inside[variant].append(spent["seconds"])
                counts[variant] = (spent["fsync_file"], spent["fsync_folder"])
                print(f"round {round_} {variant:8}: {result['wall']:7.2f} s, {spent['seconds']:5.2f} s in "
                      f"{spent['fsync_file']} file + {spent['fsync_folder']} folder fsyncs ({result['n_jobs']} jobs); "
                      f"load {os.getloadavg()[0]:.2f}", flush=True)
    for name, fn in real.items():
        setattr(durable, name, fn)
    store.linked = real_linked
    base_median, base_best = statistics.median(walls["none"]), min(walls["none"])
    print()
    for variant in VARIANTS:
        median, best = statistics.median(walls[variant]), min(walls[variant])
        line = f"{variant:8}: median {median:7.2f} s ({median / base_median:.3f}x none), best {best:7.2f} s ({best / base_best:.3f}x none)"
        if variant != "none":
            in_fsync = statistics.median(inside[variant])
            line += (f"; in fsyncs {in_fsync:5.2f} s = {100 * in_fsync / base_median:.2f}% of none's median;"
                     f" {counts[variant][0]} file + {counts[variant][1]} folder fsyncs")
        print(line)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
