"""What a SLURM cluster adds to a sweep, packed into array tasks, against the same sweep in-process.

The 7-alpha x 5-fold x 8-seed Adam grid on breast cancer (56 jobs, 280 fits), each variant a
whole ``nnexp -m`` command timed from the shell's side, in this one run:
  (a) in-process, ``launcher=batched``;
  (b) on SLURM, packed (``launcher=slurm``: the pending jobs spread over the partition's task slots);
  (c) on SLURM, one task per job (``hydra.launcher.jobs_per_task=1``, the old behaviour): 64 jobs
      (one alpha, 64 seeds), far more tasks than the node's slots, so most wait behind the sweep's
      own tasks; every job must be recorded;
  then a relaunch of (b)'s finished sweep (``nnexp resume=DIR``), which must submit nothing.
Prints wall times, the cluster's added cost per job ((b) - (a)) / 56, the task slots, and
whether every job's CV score equals the in-process one.

Uses the cluster SLURM_CONF points at, or starts a one-node cluster on this machine with
scripts/slurm_local.sh (root, Debian's slurm-wlm and munge) and stops it at the end.

    python scripts/bench_cluster.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GRID = ["sweep=alpha_grid", "optim=adam", "seed=range(0,8)", "refit=false", "quiet=true", "logger=none",
        "hydra/job_logging=none", "hydra.callbacks.sweep_summary.figures=foreground"]
SCRIPT = Path(__file__).resolve().parent / "slurm_local.sh"


def nnexp(cwd: Path, env: dict, *overrides: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "nnexp.cli", "-m", *overrides], cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"nnexp {' '.join(overrides)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return wall, done.stdout


def cv_scores(sweep: Path) -> dict[str, str]:
    """Each job's CV score by its overrides (alpha and seed)."""
    import yaml

    scores = {}
    for metrics in sweep.glob("*/metrics.json"):
        overrides = yaml.safe_load((metrics.parent / ".hydra" / "overrides.yaml").read_text())
        key = " ".join(sorted(o for o in overrides if o.startswith(("regularization.alpha=", "seed="))))
        scores[key] = json.loads(metrics.read_text())["objective"]
    return scores


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pending-timeout-s", type=float, default=30,
                        help="(c)'s hydra.launcher.pending_timeout_s (default 30)")
    args = parser.parse_args()
    env = dict(os.environ)
    cluster_dir = None
    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        root.chmod(0o755)  # munged runs as the munge user and must reach the cluster's folder
        if "SLURM_CONF" not in env:
            cluster_dir = root / "slurm"
            up = subprocess.run(["bash", str(SCRIPT), "start", str(cluster_dir)], capture_output=True, text=True)
            if up.returncode != 0:
                raise SystemExit(f"no SLURM cluster: {up.stderr.strip()}")
            env["SLURM_CONF"] = str(cluster_dir / "slurm.conf")
        try:
            a_wall, _ = nnexp(root, env, *GRID, "launcher=batched", "hydra.sweep.dir=a", "paths.store_dir=store_a")
            b_wall, b_out = nnexp(root, env, *GRID, "launcher=slurm", "hydra.sweep.dir=b", "paths.store_dir=store_b")
            relaunch_wall, relaunch_out = nnexp(root, env, f"resume={root / 'b'}")
            c_grid = ["optim=adam", "cv=5", "seed=range(0,64)", *GRID[3:]]  # 64 jobs: one alpha, 64 seeds
            c_wall, c_out = nnexp(root, env, *c_grid, "launcher=slurm", "hydra.launcher.jobs_per_task=1",
                                  f"hydra.launcher.pending_timeout_s={args.pending_timeout_s:g}", "hydra.sweep.dir=c", "paths.store_dir=store_c")
            c_recorded = sum(json.loads(path.read_text())["status"] == "ok" for path in (root / "c").glob("[0-9]*/metrics.json"))
        finally:
            if cluster_dir is not None:
                subprocess.run(["bash", str(SCRIPT), "stop", str(cluster_dir)], capture_output=True)
        a_scores, b_scores = cv_scores(root / "a"), cv_scores(root / "b")
        submitted = next((line for line in b_out.splitlines() if "Submitted" in line), "")
    jobs = 56
    print("7 alphas x 5 folds x 8 seeds, Adam, breast cancer: 56 jobs, 280 fits")
    print(f"(a) in-process, launcher=batched:         {a_wall:7.1f} s")
    print(f"(b) SLURM, packed:                         {b_wall:7.1f} s   {submitted.split('] ')[-1]}")
    print(f"(c) SLURM, one task per job, 64 jobs:     {c_wall:7.1f} s   {c_recorded}/64 jobs recorded ok, "
          f"{c_wall / 64:.2f} s a job, whole")
    print(f"cluster cost per job, packed: ({b_wall:.1f} - {a_wall:.1f}) / {jobs} = {(b_wall - a_wall) / jobs:.3f} s")
    print(f"(b) / (a) = {b_wall / a_wall:.2f}x")
    same = a_scores == b_scores and len(a_scores) == jobs
    print(f"every job's CV score equal to in-process: {same} ({len(b_scores)} jobs)")
    print(f"relaunch of the finished sweep: {relaunch_wall:.1f} s, "
          f"{'nothing submitted' if 'Submitted' not in relaunch_out else 'SUBMITTED TASKS'}")


if __name__ == "__main__":
    main()
