"""What the fsyncs of results and store entries cost on the 280-fit batched grid (bench_sweep.py's
"nnexp adam batched, 8 seeds": alpha grid x 5 folds x 8 seeds, Adam, plus the refit), run with the
fsyncs and with them turned off, alternately in this one process; the medians and their ratio.

    python scripts/bench_fsync.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sweep import nnexp_grid  # noqa: E402

from nnexp import durable  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    real = {"fsync_file": durable.fsync_file, "fsync_folder": durable.fsync_folder}
    counts = {"fsync_file": 0, "fsync_folder": 0}

    def counting(name):
        def call(path):
            counts[name] += 1
            real[name](path)
        return call

    walls = {"with fsync": [], "without fsync": []}
    with tempfile.TemporaryDirectory() as folder:
        nnexp_grid("batched", Path(folder) / "warm", "trainer.max_epochs=1", "regularization.alpha=1,10", optim="adam")
        for repeat in range(args.repeats):
            for variant in (walls if repeat % 2 == 0 else reversed(list(walls))):
                on = variant == "with fsync"
                for name in real:
                    setattr(durable, name, counting(name) if on else (lambda path: None))
                result = nnexp_grid("batched", Path(folder), "seed=range(0,8)", optim="adam", tag=f"_{repeat}_{on}")
                walls[variant].append(result["wall"])
                print(f"{variant:14} run {repeat}: {result['wall']:7.2f} s ({result['n_jobs']} jobs)", flush=True)
    for name, fn in real.items():
        setattr(durable, name, fn)
    with_, without = statistics.median(walls["with fsync"]), statistics.median(walls["without fsync"])
    print(f"\nmedian with fsync {with_:.2f} s, without {without:.2f} s: with / without = {with_ / without:.3f}"
          f" ({100 * (with_ / without - 1):+.1f}%); fsyncs per grid: {counts['fsync_file'] // args.repeats} files,"
          f" {counts['fsync_folder'] // args.repeats} folders")


if __name__ == "__main__":
    main()
