"""MNIST on this machine: nnexp's epoch against a plain PyTorch loop, precision and memory-format
speeds, and the accuracy of the named experiments.

Needs the four MNIST IDX files in <root>/mnist/ (--root, else $NNEXP_DATA, else ../shared/data).

``--busy`` times one epoch of the default CNN under nnexp (``threads=auto``, the default, and
``threads=1``) quiet and with two busy processes of the script's own (bounded in time), and
nothing else.

``--time-to-99`` trains ``experiment=mnist_fast`` once to warm up, then once per seed, and prints
each run's training seconds and test accuracy, and nothing else (issue 17's GPU target: 99% test
accuracy in under 1 s of training).

``--device cuda`` runs everything on the GPU (nnexp with ``trainer=gpu``, the plain loop on the
device); ``auto`` (the default) picks it where one is present.

    python scripts/bench_mnist.py [--root DIR] [--seeds 3] [--skip-accuracy] [--busy] [--time-to-99] [--device auto|cpu|cuda]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

import torch
from hydra import compose, initialize_config_module

from nnexp.compat import hydra_version_base
from nnexp.data.images import IdxImageSource
from nnexp.data.splits import make_fit_data
from nnexp.models.cnn import CNN
from nnexp.models.mlp import MLP
from nnexp.process import set_up_process
from nnexp.runner import run
from nnexp.training.hardware import cpu_has_native_bf16

from bench_batched import describe  # scripts/, this script's folder, is on sys.path

BATCH = 128
CNN_BLOCKS = [dict(filters=32, kernel=3, pool=2), dict(filters=32, kernel=3, pool=2)]


def nnexp_run(root: str, out: Path, *overrides: str, device: str = "cpu") -> dict:
    trainer = ["trainer=gpu"] if device == "cuda" else []
    with initialize_config_module("nnexp.configs", **hydra_version_base()):
        cfg = compose("train", overrides=[f"data.root={root}", "quiet=true", "logger=none", "plots=false",
                                          f"paths.output_dir={out}", *trainer, *overrides])
    with contextlib.redirect_stdout(io.StringIO()):
        run(cfg)
    metrics = json.loads((out / "metrics.json").read_text())
    rows = (out / "history.csv").read_text().splitlines()
    header = rows[0].split(",")
    seconds = [float(row.split(",")[header.index("seconds")]) for row in rows[1:]]
    metrics["epoch_seconds"] = [b - a for a, b in zip([0.0] + seconds, seconds)]
    return metrics


def plain_epoch(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, bf16: bool, channels_last: bool,
                steps: int | None = None, device: str = "cpu") -> float:
    """Seconds for one epoch (or ``steps`` minibatches) of a bare Adam loop; one warm-up epoch first."""
    model, X, y = model.to(device), X.to(device), y.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        X = X.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    generator = torch.Generator(device).manual_seed(0)

    def epoch(limit):
        order = torch.randperm(len(X), generator=generator, device=device)
        total = torch.zeros((), device=device)
        for number, start in enumerate(range(0, len(X), BATCH)):
            if limit is not None and number >= limit:
                break
            rows = order[start : start + BATCH]
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
                loss = torch.nn.functional.cross_entropy(model(X[rows]).float(), y[rows])
            loss.backward()
            optimizer.step()
            total += loss.detach()
        float(total)

    epoch(steps if steps else None)  # ends with a host synchronisation, as the timed one does
    started = time.perf_counter()
    epoch(steps)
    return time.perf_counter() - started


def busy_epochs(root: str) -> None:
    """One CNN epoch (the second of two: warm), quiet and under two busy processes."""
    from busy import busy_processes  # scripts/, this script's folder, is on sys.path

    warnings.filterwarnings("ignore")
    seconds = {}
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        for load in ("quiet", "busy", "quiet again"):
            with busy_processes(2 if load == "busy" else 0, seconds=900):
                for threads in ("auto", "1"):
                    metrics = nnexp_run(root, out, "data=mnist", "model=cnn", f"batch_size={BATCH}", "stopping=none",
                                        "trainer.max_epochs=2", "regularization=none", f"threads={threads}")
                    seconds[load, threads] = metrics["epoch_seconds"][-1]
    print(f"one epoch of the default CNN on 60,000 MNIST images, {os.cpu_count()} cores, quiet and with 2 busy processes:")
    for threads in ("auto", "1"):
        quiet = min(seconds["quiet", threads], seconds["quiet again", threads])
        print(f"  threads={threads:5} quiet {quiet:6.2f} s  busy {seconds['busy', threads]:6.2f} s  "
              f"busy / quiet {seconds['busy', threads] / quiet:.2f}x")


def time_to_99(root: str, seeds: int, device: str) -> None:
    """``experiment=mnist_fast``: one warm-up run (CUDA context, kernels, allocator), then one per seed."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        warm = nnexp_run(root, out, "experiment=mnist_fast", "seed=0", device=device)
        print(f"experiment=mnist_fast on {describe(device)} ({warm['precision']}); warm-up run: "
              f"{warm['fit_seconds']:.2f} s, {100 * warm['test_score']:.2f}%")
        runs = [nnexp_run(root, out, "experiment=mnist_fast", f"seed={seed}", device=device) for seed in range(1, seeds + 1)]
    for seed, metrics in enumerate(runs, start=1):
        print(f"  seed {seed}: {metrics['epochs']} epochs, training {metrics['fit_seconds']:.2f} s, "
              f"test accuracy {100 * metrics['test_score']:.2f}%")
    reached = sum(metrics["test_score"] >= 0.99 for metrics in runs)
    fastest = min(metrics["fit_seconds"] for metrics in runs)
    print(f"  {reached} of {len(runs)} runs reached 99%; fastest training {fastest:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.environ.get("NNEXP_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data")))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--busy", action="store_true", help="only the busy-machine comparison of one CNN epoch")
    parser.add_argument("--time-to-99", action="store_true", help="only experiment=mnist_fast's training time and accuracy")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    warnings.filterwarnings("ignore")
    set_up_process()  # as the nnexp command does; the plain loop gets the same allocator settings
    if args.busy:
        busy_epochs(args.root)
        return
    if args.time_to_99:
        time_to_99(args.root, args.seeds, device)
        return
    bundle = IdxImageSource(dataset="mnist", root=args.root, name="mnist").load()
    data = make_fit_data(bundle)
    X, y = data.train.X, data.train.y
    bf16 = torch.cuda.is_bf16_supported() if device == "cuda" else cpu_has_native_bf16()
    print(f"torch {torch.__version__}, {describe(device)}, native bf16: {bf16}, batch {BATCH}\n")

    print("images/s of a plain loop, default CNN (500 minibatches):")
    speeds = {}
    for channels_last in (False, True):
        for use_bf16 in (False, True):
            torch.manual_seed(0)
            seconds = plain_epoch(CNN((1, 28, 28), 10, CNN_BLOCKS), X, y, use_bf16, channels_last, steps=500, device=device)
            speeds[channels_last, use_bf16] = 500 * BATCH / seconds
            print(f"  channels_last={channels_last!s:5} bf16={use_bf16!s:5} {speeds[channels_last, use_bf16]:8.0f} images/s")
    print(f"  bf16 vs fp32 (channels_last): {speeds[True, True] / speeds[True, False]:.2f}x; "
          f"channels_last vs default (fp32): {speeds[True, False] / speeds[False, False]:.2f}x\n")

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        print("one epoch of 60,000 images, nnexp against a plain loop with the same model, precision, memory format, batch:")
        for name, overrides, build, conv in (
            ("default CNN", ["model=cnn"], lambda: CNN((1, 28, 28), 10, CNN_BLOCKS), True),
            ("MLP 784-100-10", ["model=mlp", "model.hidden_sizes=[100]"], lambda: MLP((1, 28, 28), 10, [100]), False),
        ):
            metrics = nnexp_run(args.root, out, "data=mnist", *overrides, f"batch_size={BATCH}", "stopping=none",
                                "trainer.max_epochs=2", "regularization=none", device=device)
            nnexp_epoch = metrics["epoch_seconds"][-1]  # the second epoch: warm, like the plain loop's
            use_bf16 = metrics["precision"] == "bf16-mixed"
            torch.manual_seed(0)
            plain = plain_epoch(build(), X, y, use_bf16, conv, device=device)
            print(f"  {name:15} nnexp {nnexp_epoch:6.2f} s  plain {plain:6.2f} s  ratio {nnexp_epoch / plain:.3f}x  "
                  f"({metrics['precision']}, {'channels_last' if conv else 'dense'}, {60000 / nnexp_epoch:,.0f} images/s under nnexp)")

        if args.skip_accuracy:
            return
        print("\naccuracy of the named experiments (training time excludes reading the files):")
        results = {}
        for experiment, seeds in (("mnist_cnn", args.seeds), ("mnist_mlp", args.seeds), ("permuted_mnist_cnn", 1), ("permuted_mnist_mlp", 1)):
            runs = [nnexp_run(args.root, out, f"experiment={experiment}", f"seed={seed}", device=device) for seed in range(seeds)]
            results[experiment] = runs
            scores = ", ".join(f"{100 * r['test_score']:.2f}%" for r in runs)
            times = ", ".join(f"{r['fit_seconds']:.1f} s" for r in runs)
            print(f"  {experiment:20} {runs[0]['epochs']} epochs  test accuracy {scores}  training {times}")
        for model in ("cnn", "mlp"):
            plain, permuted = results[f"mnist_{model}"][0]["test_score"], results[f"permuted_mnist_{model}"][0]["test_score"]
            print(f"  permutation effect, {model}: {100 * (permuted - plain):+.2f} points (seed 0)")


if __name__ == "__main__":
    main()
