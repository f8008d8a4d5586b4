"""What live sweep progress costs: the 280-fit batched grid (bench_sweep.py's Adam grid, 7 alphas x
8 seeds x 5 folds, batched launcher, with its refit) with the progress display off, as plain lines
(a log or a pipe) and as a rich live line (a terminal, forced with FORCE_COLOR), run alternately in
this one process; the fastest of ``--repeats`` runs of each counts. On a shared machine the
runs' spread swamps 1%, so the script also times what the display adds per job (reading the
job's status, counting it, printing or refreshing its line) over the 56 job dirs of a finished
run, and prints that against the sweep's wall time.

    python scripts/bench_progress.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sweep import nnexp_grid  # noqa: E402  (the same grid, run through the console entry point)

VARIANTS = {"off": ("~hydra.callbacks.progress",), "plain lines": (), "live line": ()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    walls: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        nnexp_grid("batched", root / "warmup", "trainer.max_epochs=1", "regularization.alpha=1,10", optim="adam")
        for repeat in range(args.repeats):
            for name, extra in VARIANTS.items():
                if name == "live line":
                    os.environ["FORCE_COLOR"] = "1"  # rich treats the output as a terminal
                try:
                    result = nnexp_grid("batched", root, "seed=range(0,8)", *extra, optim="adam", tag=f"_{name[:4]}{repeat}")
                finally:
                    os.environ.pop("FORCE_COLOR", None)
                walls[name].append(result["wall"])
                print(f"{name:12} run {repeat + 1}: {result['wall']:7.2f} s ({result['n_jobs']} jobs, 280 fits + refit)", flush=True)
        per_job = callback_cost(root / "sweep_batched_off0")
    best = {name: min(values) for name, values in walls.items()}
    for name in ("plain lines", "live line"):
        print(f"{name:12} / off: {best[name] / best['off']:.3f}x  (best {best[name]:.2f} s against {best['off']:.2f} s)")
    print(f"the display's own work: {1000 * per_job:.3f} ms a job, {56 * per_job:.4f} s for the 56 jobs = "
          f"{100 * 56 * per_job / best['off']:.4f}% of the sweep")


def callback_cost(sweep_dir: Path, rounds: int = 20) -> float:
    """Seconds the progress callback spends per job (plain lines to a buffer), over a real sweep's job dirs."""
    import io
    import time

    from hydra.core.utils import JobReturn, JobStatus
    from omegaconf import OmegaConf
    from rich.console import Console

    from nnexp.progress import SweepProgress

    jobs = sorted(sweep_dir.glob("[0-9]*/.hydra/hydra.yaml"), key=lambda p: int(p.parent.parent.name))
    configs = []
    for path in jobs:
        config = OmegaConf.create({"hydra": OmegaConf.load(path).hydra})
        config.hydra.runtime.output_dir = str(path.parent.parent)
        configs.append(config)
    returned = JobReturn(status=JobStatus.COMPLETED, _return_value=0.9)
    started = time.perf_counter()
    for _ in range(rounds):
        progress = SweepProgress()
        progress.start(len(configs), console=Console(file=io.StringIO(), width=120))
        for config in configs:
            progress.on_job_end(config, returned)
    return (time.perf_counter() - started) / (rounds * len(configs))


if __name__ == "__main__":
    main()
