"""Optuna pruning inside a stack: each job reports its own trial, and a pruned job's members leave."""

from __future__ import annotations

import math


class StackPruning:
    """The trials of a stack's jobs. ``links`` maps a member's position in the stack to its
    job's ``TrialLink`` (a job's fold members share one). Every ``due`` epoch, a job reports the
    mean held-out score of its folds, the CV mean at that epoch (a fold that stopped earlier
    counts with its last score), and the study's pruner decides."""

    def __init__(self, links: dict[int, object]):
        self.links = links
        self.jobs: dict[int, list[int]] = {}  # id(link) -> its members' positions
        for position, link in links.items():
            self.jobs.setdefault(id(link), []).append(position)
        self.last: dict[int, float] = {}
        self.pruned_epoch: dict[int, int] = {}  # member position -> the epoch its job was pruned

    def due(self, epoch: int) -> bool:
        return any(link.due(epoch) for link in self.links.values())

    def report(self, epoch: int, scores: dict[int, float]) -> set[int]:
        """Report this epoch's scores (by member position, of the members still training);
        return the positions of the members whose job the pruner stopped."""
        self.last.update(scores)
        pruned: set[int] = set()
        for positions in self.jobs.values():
            link = self.links[positions[0]]
            if positions[0] in self.pruned_epoch or not link.due(epoch) or not any(p in scores for p in positions):
                continue
            values = [self.last[p] for p in positions if p in self.last]
            if values and link.report(math.fsum(values) / len(values), epoch):
                pruned.update(positions)
                self.pruned_epoch.update((p, epoch) for p in positions)
        return pruned
