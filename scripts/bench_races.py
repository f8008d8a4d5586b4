"""Races on one dir, as a user makes them: two ``nnexp`` processes started a random moment apart.

  1. two sweeps of different grids into one sweep dir;
  2. two single runs into one run dir (``hydra.run.dir``);
  3. two ``nnexp resume=S`` of one unfinished sweep at once.

Each case runs ``--repeats`` times (default 20), the second process started 0 to ``--spread``
seconds after the first. A result is *lost* when a process said it finished a job (or a run)
and no dir holds that result; *mixed* when a dir's result is not the job its ``.hydra`` files name.
Prints, per case, the repeats, lost and mixed results, failed records, double trainings, and how
the second process ended (refused / wrote beside / ran after). ``--repo DIR`` runs another
checkout's nnexp (e.g. the commit before: ``git worktree add /tmp/base <hash>``), side by side.

    python scripts/bench_races.py [--repeats 20] [--spread 3] [--repo /tmp/base]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

FAST = ["quiet=true", "logger=none", "plots=false", "trainer.max_epochs=3", "data=iris",
        "hydra.callbacks.sweep_summary.figures=foreground", "hydra/job_logging=none"]


def start(cwd: Path, env: dict, *argv: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nnexp.cli", *argv], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def pair(cwd: Path, env: dict, first: list[str], second: list[str], spread: float) -> list[tuple[int, str, str]]:
    """Start both, the second ``uniform(0, spread)`` s after the first; their (code, stdout, stderr)."""
    processes = [start(cwd, env, *first)]
    time.sleep(random.uniform(0, spread))
    processes.append(start(cwd, env, *second))
    outputs = [process.communicate() for process in processes]
    return [(process.returncode, out, err) for process, (out, err) in zip(processes, outputs)]


def job_dirs(sweep: Path):
    import yaml

    for metrics in sweep.glob("[0-9]*/metrics.json"):
        record = json.loads(metrics.read_text())
        overrides = yaml.safe_load((metrics.parent / ".hydra" / "overrides.yaml").read_text())
        yield metrics.parent, record, overrides


def mixed(sweep: Path) -> int:
    """Job dirs whose result is not the job their overrides name (seed and lr checked)."""
    import yaml

    count = 0
    for folder, record, overrides in job_dirs(sweep):
        if record.get("status") not in ("ok", "diverged"):
            continue
        saved = yaml.safe_load((folder / "config.yaml").read_text())
        for override in overrides:
            key, value = override.split("=", 1)
            if key == "seed" and record.get("seed") != int(value):
                count += 1
            if key == "optim.lr" and float(saved["optim"]["lr"]) != float(value):
                count += 1
    return count


def reported(stdout: str) -> list[tuple[str, str]]:
    """(job number, objective) of each job a sweep said it finished."""
    return re.findall(r"^job (\d+): .* -> objective (\S+)$", stdout, re.M)


def lost(sweep: Path, stdout: str) -> int:
    """Jobs a process reported finished whose dir holds no result with that objective."""
    count = 0
    for number, objective in reported(stdout):
        path = sweep / number / "metrics.json"
        value = json.loads(path.read_text()).get("objective") if path.is_file() else None
        if value is None or f"{value:.4f}" != objective:
            count += 1
    return count


def how(code: int, stderr: str) -> str:
    if "in use by" in stderr:
        return "refused (busy)"
    if "holds another run" in stderr:
        return "wrote beside"
    return "ran" if code == 0 else f"exit {code}"


def case_sweeps(root: Path, env: dict, spread: float) -> Counter:
    a = ["-m", "hydra.sweep.dir=S", "paths.store_dir=store_a", *FAST, "seed=0,1,2"]
    b = ["-m", "hydra.sweep.dir=S", "paths.store_dir=store_b", *FAST, "optim.lr=0.01,0.1"]
    results = pair(root, env, a, b, spread)
    tally = Counter(mixed=mixed(root / "S"), lost=sum(lost(root / "S", out) for _, out, _ in results))
    tally[f"second {how(results[1][0], results[1][2])}"] += 1
    return tally


def case_runs(root: Path, env: dict, spread: float) -> Counter:
    runs = [["hydra.run.dir=R", *FAST, f"seed={seed}"] for seed in (1, 2)]
    results = pair(root, env, *runs, spread)
    tally = Counter(lost=0, mixed=0)
    for seed, (code, out, err) in zip((1, 2), results):
        found = re.search(r"run dir: (\S+)", out)
        if code != 0 or not found:
            continue
        path = Path(found.group(1)) / "metrics.json"
        if not path.is_file() or json.loads(path.read_text()).get("seed") != seed:
            tally["lost"] += 1
        overrides = (Path(found.group(1)) / ".hydra" / "overrides.yaml").read_text()
        tally["mixed"] += f"seed={seed}" not in overrides
    tally[f"second {how(results[1][0], results[1][2])}"] += 1
    return tally


def case_resumes(root: Path, env: dict, spread: float) -> Counter:
    done = subprocess.run([sys.executable, "-m", "nnexp.cli", "-m", "hydra.sweep.dir=S", "paths.store_dir=store", *FAST,
                           "seed=0,1,2"], cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    for metrics in (root / "S").glob("[0-9]*/metrics.json"):
        metrics.unlink()  # unfinished, as a killed sweep leaves it
    shutil.rmtree(root / "store")
    results = pair(root, env, ["resume=S"], ["resume=S"], spread)
    records = [record for _, record, _ in job_dirs(root / "S")]
    trained = sum(len(reported(out)) - out.count("skipped, finished earlier") for _, out, _ in results)
    tally = Counter(mixed=mixed(root / "S"), lost=sum(lost(root / "S", out) for _, out, _ in results),
                    failed=sum(record.get("status") not in ("ok", "diverged") for record in records),
                    missing=3 - len(records), trained_twice=max(0, trained - 3))
    tally[f"second {how(results[1][0], results[1][2])}"] += 1
    return tally


CASES = {"two sweeps, one sweep dir": case_sweeps, "one run dir used twice": case_runs, "two resumes at once": case_resumes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--spread", type=float, default=3.0, help="the second process starts 0 to SPREAD s after the first")
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1], help="the checkout whose nnexp runs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    random.seed(args.seed)
    env = {**os.environ, "PYTHONPATH": str(args.repo.resolve())}
    print(f"nnexp from {args.repo.resolve()}; {args.repeats} repeats a case, start offsets 0-{args.spread} s")
    for name, case in CASES.items():
        total = Counter()
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as root:
                total.update(case(Path(root), env, args.spread))
        outcomes = ", ".join(f"{n} {k}" for k, n in sorted(total.items()) if k.startswith("second"))
        counts = ", ".join(f"{k} {total[k]}" for k in ("lost", "mixed", "failed", "missing", "trained_twice") if k in total or k in ("lost", "mixed"))
        print(f"{name:28s} {args.repeats} repeats: {counts}; {outcomes}", flush=True)


if __name__ == "__main__":
    main()
