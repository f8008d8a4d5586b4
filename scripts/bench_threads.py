"""Where a second torch thread starts to pay: one MLP training step (forward, backward, Adam)
timed with 1 thread and with every core, for growing layer sizes, quiet and under load.

The work of a step is counted as nnexp's ``threads=auto`` counts it
(``nnexp.training.hardware.step_work``: batch rows x multiply-adds per row). ``--busy N`` starts
N busy processes of the script's own (bounded in time) while it measures, as a shared laptop,
lab server or SLURM node would have.

    python scripts/bench_threads.py [--busy 2] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from busy import busy_processes
from nnexp.models.mlp import MLP
from nnexp.training.hardware import AUTO_THREADS_MIN_WORK, step_work

SHAPES = [  # (inputs, hidden sizes, outputs, batch rows)
    (30, [100], 2, 200),           # breast cancer, the default net
    (64, [100], 10, 200),          # digits
    (64, [300], 10, 200),
    (784, [50], 10, 128),
    (784, [100], 10, 128),         # MNIST MLP
    (64, [1000], 10, 200),
    (64, [500, 500], 10, 200),     # the lecture's widest hidden_sizes
    (784, [512, 512], 10, 128),
    (784, [1024, 1024], 10, 256),
    (784, [2048, 2048], 10, 512),
]


def seconds_per_step(shape, threads: int, repeats: int) -> float:
    inputs, hidden, outputs, rows = shape
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = MLP(inputs, outputs, hidden)
    optimizer = torch.optim.Adam(net.parameters(), fused=True)
    X, y = torch.randn(rows, inputs), torch.randint(0, outputs, (rows,))
    steps = min(400, max(5, int(3e8 / step_work(inputs, hidden, outputs, rows))))  # about 0.1 s a repeat

    def run(n):
        for _ in range(n):
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(net(X), y).backward()
            optimizer.step()

    run(3)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run(steps)
        best = min(best, (time.perf_counter() - started) / steps)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, default=0, help="busy processes to run alongside")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(f"{cores} cores, {args.busy} busy processes; threads=auto uses all cores from "
          f"{AUTO_THREADS_MIN_WORK:.1e} multiply-adds per step\n")
    print(f"{'inputs-hidden-outputs x rows':34} {'work/step':>10} {'1 thread':>10} {f'{cores} threads':>10} {'speed-up':>9}")
    with busy_processes(args.busy, seconds=600):
        for shape in SHAPES:
            work = step_work(*shape)
            one = seconds_per_step(shape, 1, args.repeats)
            many = seconds_per_step(shape, cores, args.repeats)
            inputs, hidden, outputs, rows = shape
            name = f"{inputs}-{'-'.join(map(str, hidden))}-{outputs} x {rows}"
            print(f"{name:34} {work:10.1e} {one * 1e3:8.3f}ms {many * 1e3:8.3f}ms {one / many:8.2f}x")


if __name__ == "__main__":
    main()
