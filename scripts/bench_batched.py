"""Batched members on MNIST: one epoch of an MLP 784-100-10 (Adam, batch 200) for M members
stacked (launcher=batched's trainer), against one member alone in the same trainer and against a
plain PyTorch loop of one model. Issue 5 asks, where a GPU is available: 256 members in at most
10x the time of one member.

Members differ in alpha and learning rate, as a grid's do; they share the training rows, which
the stack stores once. Needs the MNIST IDX files in <root>/mnist/ (--root, else $NNEXP_DATA,
else ../shared/data).

``--members`` takes one count or several (``1,16,64,256``); each is timed against the same single
member and plain loop.

    python scripts/bench_batched.py [--members 256] [--device auto|cpu|cuda] [--root DIR]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import torch
from hydra import compose, initialize_config_module

from nnexp.batched.plan import build_members, stack_spec
from nnexp.batched.trainer import train_stack
from nnexp.compat import hydra_version_base
from nnexp.data.loading import load_data


def member_configs(root: str, count: int) -> list:
    """``count`` job configs of one grid: alphas x learning rates."""
    alphas = [10.0**e for e in range(-5, 3)]
    lrs = [1e-3, 3e-4, 3e-3, 1e-4]
    configs = []
    with initialize_config_module("nnexp.configs", **hydra_version_base()):
        for number in range(count):
            alpha, lr = alphas[number % len(alphas)], lrs[(number // len(alphas)) % len(lrs)]
            configs.append(compose("train", overrides=[
                "data=mnist", f"data.root={root}", "model.hidden_sizes=[100]", "optim=adam", f"optim.lr={lr}",
                f"regularization.alpha={alpha}", "stopping=none", "trainer.max_epochs=1", "batch_size=200",
                "paths.output_dir=.",
            ]))
    return configs


def stacked_epoch(configs: list, bundle, device: str) -> float:
    """Seconds to train every config's member for one epoch as one stack."""
    memo: dict = {}
    members = [member for cfg in configs for _, member, _, _, _ in build_members(cfg, bundle, memo)]
    spec = stack_spec(configs[0], bundle, batch_size=200)
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    train_stack(members, spec, device)  # ends with a host synchronisation (the epoch's metrics)
    return time.perf_counter() - started


def plain_epoch(bundle, device: str) -> float:
    """Seconds for one epoch of a bare fused-Adam loop over one 784-100-10 MLP."""
    X = torch.as_tensor(bundle.X_train, dtype=torch.float32).reshape(len(bundle.X_train), -1).to(device)
    y = torch.as_tensor(bundle.y_train, dtype=torch.long).to(device)
    model = torch.nn.Sequential(torch.nn.Linear(784, 100), torch.nn.ReLU(), torch.nn.Linear(100, 10)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    order = torch.randperm(len(X), device=device)
    for start in range(0, len(X), 200):
        rows = order[start : start + 200]
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(X[rows]), y[rows]).backward()
        optimizer.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def describe(device: str) -> str:
    """The device's name, or the CPU's thread count."""
    return torch.cuda.get_device_name() if device == "cuda" else f"cpu, {torch.get_num_threads()} threads"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", default="256", help="a count, or counts separated by commas")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--root", default=os.environ.get("NNEXP_DATA", str(Path(__file__).resolve().parents[1].parent / "shared" / "data")))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    counts = [int(count) for count in args.members.split(",")]
    configs = member_configs(args.root, max(counts))
    bundle = load_data(configs[0].data)
    print(f"device: {describe(device)}")
    stacked_epoch(configs[:2], bundle, device)  # warm-up: kernels, allocator
    plain = plain_epoch(bundle, device)
    one = stacked_epoch(configs[:1], bundle, device)
    print(f"plain PyTorch loop, 1 model:      {plain:7.2f} s / epoch")
    print(f"batched trainer, 1 member:        {one:7.2f} s / epoch")
    for count in counts:
        many = stacked_epoch(configs[:count], bundle, device)
        print(f"batched trainer, {count:3d} members:    {many:7.2f} s / epoch  "
              f"= {many / one:.1f}x one member ({one * count / many:.1f}x the throughput), {many / plain:.1f}x the plain loop")


if __name__ == "__main__":
    main()
