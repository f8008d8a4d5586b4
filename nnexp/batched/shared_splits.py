"""The training (or validation) rows of a stack's members, each distinct split stored once."""

from __future__ import annotations

import torch

from nnexp.data.splits import TensorSplit


class SharedSplits:
    """The distinct splits of a stack's members, stored once: members trained on the same rows
    (the grid points of one fold and seed) share them, so hundreds of members fit on one device.
    ``X`` (D, n_max, features), ``y`` (D, n_max, ...); ``of_member`` (M,) picks a member's split.
    ``ones_column``: X carries a ones column last (features + 1), as a stack's layers take it;
    ``dtype``: features (and real-valued targets) in another precision (float64 for L-BFGS)."""

    def __init__(self, splits: list[TensorSplit], device, ones_column: bool = False, dtype: torch.dtype | None = None):
        index: dict[int, int] = {}
        distinct: list[TensorSplit] = []
        for split in splits:
            if id(split) not in index:
                index[id(split)] = len(distinct)
                distinct.append(split)
        n_max = max(len(split) for split in distinct)
        first = distinct[0]
        features = first.X[0].numel()
        self.X = torch.zeros((len(distinct), n_max, features + int(ones_column)), dtype=dtype or first.X.dtype, device=device)
        if ones_column:
            self.X[..., -1] = 1.0
        y_dtype = dtype if dtype is not None and first.y.is_floating_point() else first.y.dtype
        self.y = torch.zeros((len(distinct), n_max, *first.y.shape[1:]), dtype=y_dtype, device=device)
        for d, split in enumerate(distinct):
            self.X[d, : len(split), :features] = split.X.reshape(len(split), -1).to(device)
            self.y[d, : len(split)] = split.y.to(device)
        self.of_member = torch.tensor([index[id(split)] for split in splits], device=device)
        self.n_rows = torch.tensor([len(split) for split in splits], device=device)
        self._offsets()

    def _offsets(self) -> None:
        # Where each member's split starts among the flattened splits; None when all share one.
        self.offset = (self.of_member * self.n_max)[:, None] if self.X.shape[0] > 1 else None

    @property
    def n_max(self) -> int:
        return self.X.shape[1]

    def keep(self, keep: torch.Tensor) -> None:
        self.of_member, self.n_rows = self.of_member[keep], self.n_rows[keep]
        self._offsets()

    def row_mask(self) -> torch.Tensor:
        """(M, n_max): True on each member's real rows."""
        return torch.arange(self.n_max, device=self.X.device)[None] < self.n_rows[:, None]

    def rows(self, order: torch.Tensor) -> torch.Tensor:
        """Row indices into the flattened splits for each member's ``order`` (M, k) of its rows."""
        return order if self.offset is None else order + self.offset

    def take(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (M, k, features) and targets (M, k, ...) of ``rows`` (M, k) from :meth:`rows`."""
        flat = rows.reshape(-1)
        X = self.X.flatten(0, 1).index_select(0, flat).view(*rows.shape, self.X.shape[-1])
        y = self.y.flatten(0, 1).index_select(0, flat).view(*rows.shape, *self.y.shape[2:])
        return X, y

    def members(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every member's whole split: a broadcast view when all share one, else a copy."""
        M = len(self.of_member)
        if self.X.shape[0] == 1:
            return self.X.expand(M, *self.X.shape[1:]), self.y.expand(M, *self.y.shape[1:])
        return self.X.index_select(0, self.of_member), self.y.index_select(0, self.of_member)
