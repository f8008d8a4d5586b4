"""Two ways to stack more that issue 17 proposed, measured before building them.

1. Stacks across hidden sizes (Adam). Jobs of different widths could share one stack, the
   narrower ones padded to the widest with masked units. Such a stack costs at least what a stack
   of as many members at the widest shape costs, so this times, side by side: the shapes' own
   stacks (what ``launcher=batched`` runs today) against one stack of as many members at the
   widest shape (3 seeds of it): the least a padded stack would take.
2. An L-BFGS stack split over two processes. scipy's minimiser holds the GIL, so a stack's
   members run their scipy work on one core. This times ``train_lbfgs_stack`` as it is against
   the same members split in two halves, one of them in a forked child (1 torch thread each),
   for stacks of 10 to 35 members.

Breast cancer, 5-fold CV, no refit, every variant a whole in-process ``nnexp -m`` (fastest of
``--repeats``, alternating). Each line prints the largest gap between the two ways' training losses.

    python scripts/bench_stacking.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import pickle
import warnings

import torch

SHAPES = {"one layer": ("[10],[50],[100]", "[100]"), "two layers": ("[10,10],[50,50],[100,100]", "[100,100]")}
LBFGS_GRIDS = {
    "10 members, width 10": ("regularization.alpha=1e-4,1", "model.hidden_sizes=[10]"),
    "10 members, width 100": ("regularization.alpha=1e-4,1", "model.hidden_sizes=[100]"),
    "20 members, width 100": ("regularization.alpha=1e-4,1e-3,1e-2,0.1", "model.hidden_sizes=[100]"),
    "35 members, width 10": ("regularization.alpha=1e-3,1e-2,0.1,1,10,100,1000", "model.hidden_sizes=[10]"),
    "35 members, width 100 (the alpha grid)": ("regularization.alpha=1e-3,1e-2,0.1,1,10,100,1000", "model.hidden_sizes=[100]"),
}


def sweep(*overrides: str) -> tuple[float, list[float]]:
    """Wall time of an in-process ``nnexp -m`` (batched, 5-fold, no refit) and every fold's
    training loss, in job order."""
    from bench_lbfgs import sweep as timed_folds  # scripts/, this script's folder, is on sys.path

    wall, folds, _ = timed_folds("launcher=batched", "cv=5", *overrides)
    return wall, [fold["train_loss"] for fold in folds]


def fastest(repeats: int, variants: dict) -> dict:
    """{name: (fastest wall, the last run's losses)}, the variants run alternately."""
    walls: dict = {name: [] for name in variants}
    losses: dict = {}
    for _ in range(repeats):
        for name, run in variants.items():
            wall, losses[name] = run()
            walls[name].append(wall)
    return {name: (min(walls[name]), losses[name]) for name in variants}


def split_in_two_processes(train):
    """``train_lbfgs_stack`` with the members split in halves, the second half in a forked child."""

    def child(writer, members, spec, device):
        torch.set_num_threads(1)
        writer.send_bytes(pickle.dumps(train(members, spec, device)))
        writer.close()

    def split(members, spec, device="cpu"):
        context = multiprocessing.get_context("fork")
        reader, writer = context.Pipe(duplex=False)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        process = context.Process(target=child, args=(writer, members[1::2], spec, device), daemon=True)
        process.start()
        writer.close()
        try:
            mine = train(members[0::2], spec, device)
            theirs = pickle.loads(reader.recv_bytes())
        finally:
            process.join()
            torch.set_num_threads(threads)
        results = [None] * len(members)
        results[0::2], results[1::2] = mine, theirs
        return results

    return split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import nnexp.batched.lbfgs as lbfgs
    from nnexp.process import set_up_process

    set_up_process()
    warnings.filterwarnings("ignore")
    sweep("optim=lbfgs", "data=iris", "regularization.alpha=1,10")  # warm-up: imports, first stacks

    print("1. stacks across hidden sizes (Adam, 15 fits each; a padded stack costs at least the right column)")
    for name, (shapes, widest) in SHAPES.items():
        measured = fastest(args.repeats, {
            "own": lambda: sweep("optim=adam", f"model.hidden_sizes={shapes}"),
            "widest": lambda: sweep("optim=adam", f"model.hidden_sizes={widest}", "seed=0,1,2"),
        })
        own, widest_wall = measured["own"][0], measured["widest"][0]
        print(f"  {name:10} {shapes:26} as 3 stacks {own:5.2f} s   15 members at {widest:9} {widest_wall:5.2f} s   "
              f"padding would take >= {widest_wall / own:.2f}x")

    print("2. an L-BFGS stack split over two processes (the second half forked)")
    train = lbfgs.train_lbfgs_stack
    split = split_in_two_processes(train)
    for name, grid in LBFGS_GRIDS.items():

        def run(stack):
            lbfgs.train_lbfgs_stack = stack  # nnexp.batched.launch imports it at each stack
            try:
                return sweep("optim=lbfgs", *grid)
            finally:
                lbfgs.train_lbfgs_stack = train

        measured = fastest(args.repeats, {"one": lambda: run(train), "two": lambda: run(split)})
        (one, reference), (two, losses) = measured["one"], measured["two"]
        gap = max(abs(a - b) for a, b in zip(losses, reference, strict=True))
        print(f"  {name:40} one process {one:5.2f} s   two {two:5.2f} s   {two / one:.2f}x   largest loss gap {gap:.1e}")


if __name__ == "__main__":
    main()
