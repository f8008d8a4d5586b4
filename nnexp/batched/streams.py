"""Random streams of a stack's members: batch orders and dropout masks.

Members that would draw the same numbers in their sequential runs (the same seed, the same
number of rows, the same dropout rate) share one generator, so a grid over alpha shuffles once
per fold, not once per member.
"""

from __future__ import annotations

from typing import Callable, Hashable

import torch

from nnexp.sklearn_random import SklearnOrders, TorchOrders


class SharedStreams:
    """One generator per distinct key; ``of_member`` maps each member to its stream (-1: none)."""

    def __init__(self, keys: list[Hashable | None], make: Callable[[Hashable], torch.Generator], device):
        index: dict[Hashable, int] = {}
        self.of_member = torch.tensor([-1 if key is None else index.setdefault(key, len(index)) for key in keys], device=device)
        self.streams = [(key, make(key)) for key in index]
        self.device = device

    def keep(self, keep: torch.Tensor) -> None:
        """Follow the stack when members leave it; streams nobody uses any more are dropped."""
        of_member = self.of_member[keep].tolist()
        used = sorted({s for s in of_member if s >= 0})
        self.streams = [self.streams[s] for s in used]
        self.of_member = torch.tensor([used.index(s) if s >= 0 else -1 for s in of_member], device=self.device)


class BatchOrders(SharedStreams):
    """Each member's row order per epoch, as its sequential epoch draws it: scikit-learn's
    (``states``: the generator state its fit data carries, ``nnexp.sklearn_random``) or randperm
    of its n rows from a torch generator seeded with its seed (``init=torch``); rows that fit in
    one batch are not shuffled."""

    def __init__(self, seeds: list[int], n_rows: list[int], batch_size: int, device, states: list[tuple | None] | None = None):
        states = states or [None] * len(seeds)
        keys = []
        for seed, n, state in zip(seeds, n_rows, states):
            if batch_size >= n:
                keys.append(("unshuffled", n))
            else:  # members whose fits draw the same numbers share a stream
                keys.append((seed, n) if state is None else ("sklearn", n, state[1].tobytes(), state[2]))
        state_of = {key: state for key, state in zip(keys, states)}

        def make(key):
            if key[0] == "unshuffled":
                return None
            if key[0] == "sklearn":
                return SklearnOrders(state_of[key], device)
            return TorchOrders(key[0], device)

        super().__init__(keys, make, device)

    def draw(self, n_max: int) -> torch.Tensor:
        """This epoch's orders (M, n_max), padding rows last."""
        orders = []
        for key, generator in self.streams:
            n = key[1]
            if generator is None:
                orders.append(torch.arange(n_max, device=self.device))
            elif n == n_max:
                orders.append(generator(n))
            else:
                order = torch.arange(n_max, device=self.device)
                order[:n] = generator(n)
                orders.append(order)
        if len(orders) == 1:  # every member draws the same order (as in a grid over alpha)
            return orders[0].expand(len(self.of_member), -1)
        return torch.stack(orders).index_select(0, self.of_member)


class DropoutMasks(SharedStreams):
    """Inverted-dropout masks replayed from each member's own stream: the CPU generator state its
    sequential run has when training starts, drawn as ``nn.Dropout`` draws on a CPU
    (``bernoulli_(1 - p) / (1 - p)`` over the batch's rows, layer after layer)."""

    def __init__(self, rates: list[float], seeds: list[int], n_rows: list[int], states: list[torch.Tensor | None], device):
        state_of = dict(zip(seeds, states))
        keys = [(seed, n, p) if p > 0 else None for seed, n, p in zip(seeds, n_rows, rates)]
        super().__init__(keys, lambda key: torch.Generator().set_state(state_of[key[0]]), device)

    @property
    def active(self) -> bool:
        return bool(self.streams)

    def draw(self, start: int, stop: int, widths: list[int]) -> list[torch.Tensor]:
        """The masks (M, stop - start, width) of one minibatch, one per hidden layer; members
        without dropout get ones, and a stream with no rows in this batch draws nothing."""
        masks = []
        for width in widths:
            table = torch.ones(len(self.streams) + 1, stop - start, width)
            for s, ((_, n, p), generator) in enumerate(self.streams, start=1):
                rows = min(stop, n) - start
                if rows > 0:
                    table[s, :rows].bernoulli_(1 - p, generator=generator).div_(1 - p)
            masks.append(table.to(self.device).index_select(0, self.of_member + 1))
        return masks
