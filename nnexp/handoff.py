"""What a run's stages hand each other, importable without Lightning: the constructors a plan
builds once (``Factories``), a built network (``Network``) and what every producer hands to
``record`` (``FitResult``). ``nnexp.fit`` trains with them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from omegaconf import DictConfig, OmegaConf

from nnexp.factory import instantiate
from nnexp.metrics import FitMetrics

if TYPE_CHECKING:
    import torch

    from nnexp.data.splits import FitData


@dataclass
class Factories:
    """A run's constructors, instantiated once: Hydra's instantiate costs ~3 ms a call, which a
    cross-validated sweep job would otherwise pay for every fold."""

    model: Callable
    optimizer: Callable
    schedule: Callable | None
    trainer: Callable | None

    @classmethod
    def from_config(cls, cfg: DictConfig, trainer: bool = True) -> "Factories":
        """``trainer=False``: no Trainer constructor (the batched trainer needs none)."""
        return cls(instantiate(cfg.model), instantiate(cfg.optim), instantiate(cfg.schedule) or None,
                   trainer_factory(cfg) if trainer else None)


def trainer_factory(cfg: DictConfig) -> Callable:
    """A Trainer constructor. Nested objects (a DDP strategy) are stateful, so a trainer config
    with any is instantiated afresh for every fit instead of sharing them through a partial."""
    nested = any(OmegaConf.is_dict(value) and "_target_" in value for value in cfg.trainer.values())
    if nested:
        return lambda **kwargs: instantiate(cfg.trainer, **kwargs)
    return instantiate(cfg.trainer, _partial_=True)


@dataclass
class Network:
    """A freshly seeded network with its optimiser factory, batch size and layer table."""

    module: "torch.nn.Module"
    optimizer_factory: object
    batch_size: int
    layers: list[dict] = field(default_factory=list)
    params: int = 0


@dataclass
class FitResult:
    """What every producer (sequential, cross-validated, batched) hands to ``record``: the fit's
    metrics, its per-epoch history, the trained network and the data it was fitted on."""

    metrics: FitMetrics
    history: list[dict]
    network: "torch.nn.Module"
    data: "FitData"
