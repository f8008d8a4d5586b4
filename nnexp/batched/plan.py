"""Which sweep jobs can train together, and how a job becomes stack members (one per fold)."""

from __future__ import annotations

import copy
import math

import torch
from omegaconf import DictConfig

from nnexp.batched.trainer import MemberSpec, StackSpec
from nnexp.config import resolve_batch_size
from nnexp.data.bundle import DataBundle, fit_validation_fraction
from nnexp.data.splits import make_fit_data
from nnexp.factory import call_factory, instantiate
from nnexp.fit import Factories, prepare_network
from nnexp.models.task import Task
from nnexp.cross_validation import fold_indices
from nnexp.sklearn_random import fit_data_options
from nnexp.store import resolved_settings, settings_hash
from nnexp.training.lbfgs import is_lbfgs

# Values that may differ between the members of one stack.
BATCHABLE_KEYS = ("regularization.alpha", "regularization.l1", "optim.lr", "optim.momentum", "model.dropout", "seed")
OPTIMIZERS = {
    "nnexp.training.optimizers.Adam": "adam", "nnexp.training.optimizers.SGD": "sgd",
    "torch.optim.Adam": "adam_torch", "torch.optim.adam.Adam": "adam_torch",
    "torch.optim.SGD": "sgd_torch", "torch.optim.sgd.SGD": "sgd_torch",
    "nnexp.training.lbfgs.LBFGS": "lbfgs",
}
# Optimiser arguments the batched optimisers implement; any other must be off (0, False, None).
OPTIMIZER_KEYS = {"_target_", "_partial_", "lr", "betas", "eps", "fused", "foreach", "momentum", "nesterov"}
LBFGS_KEYS = {"_target_", "_partial_", "max_iter", "max_fun", "tol", "history_size", "float64"}
CONSTANT_SCHEDULE = "torch.optim.lr_scheduler.ConstantLR"


def training_device(cfg: DictConfig) -> str:
    """Where a stack trains: the GPU when the trainer asks for one (or auto) and there is one."""
    accelerator = str(cfg.trainer.get("accelerator", "cpu"))
    return "cuda" if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available() else "cpu"


def why_not_batchable(cfg: DictConfig) -> str | None:
    """None when the job can join a stack, else the reason it runs as an ordinary job."""
    if cfg.model.get("_target_") != "nnexp.models.mlp.MLP":
        return f"model {cfg.model.get('_target_')} is not an MLP"
    if str(cfg.trainer.get("accelerator", "cpu")) in ("gpu", "cuda") and not torch.cuda.is_available():
        return "trainer.accelerator asks for a GPU and this machine has none"
    dropout = float(cfg.model.get("dropout", 0) or 0)
    if dropout > 0 and training_device(cfg) != "cpu":
        return "dropout is batched on a CPU only (members replay the sequential run's CPU dropout stream)"
    kind = OPTIMIZERS.get(cfg.optim.get("_target_"))
    if kind is None:
        return f"optimiser {cfg.optim.get('_target_')} is not batched (Adam, SGD and nnexp's L-BFGS are)"
    for key, value in cfg.optim.items():
        if key not in (LBFGS_KEYS if kind == "lbfgs" else OPTIMIZER_KEYS) and value not in (None, False, 0, 0.0):
            return f"optim.{key}={value} is not batched"
    if kind == "lbfgs":
        if dropout > 0:
            return "L-BFGS with dropout is not batched"
        if max(float(cfg.data.get("validation_fraction", 0) or 0), float(cfg.stopping.get("validation_fraction", 0) or 0)) > 0:
            return "L-BFGS with a validation split is not batched"
        if cfg.get("trial") is not None:
            return "L-BFGS jobs of an Optuna study are not batched"
        if not cfg.optim.get("float64", True):
            return "L-BFGS in float32 is not batched (L-BFGS amplifies the stack's other float32 rounding)"
    if cfg.schedule.get("_target_") != CONSTANT_SCHEDULE:
        return f"schedule {cfg.schedule.get('_target_')} is not batched (constant is)"
    if str(cfg.trainer.get("precision", "auto")) not in ("auto", "32-true", "32"):
        return "only fp32 is batched"
    if cfg.get("callbacks"):
        return "extra Lightning callbacks need a Lightning fit"
    return None


# L-BFGS members join a stack up to this many parameters each. 10 fits a width (5 folds, 2 alphas;
# python scripts/bench_lbfgs.py, 2026-12-07, the stack's L-BFGS-B in torch) ran 1.45-2.8x faster
# stacked at 13k-32k parameters, 1.1-1.9x at 47k and 1.19x at 266k (500, 500); nothing larger was measured.
LBFGS_MAX_STACKED_PARAMETERS = 300_000
# A stack holds each L-BFGS member's memory (2 x history_size vectors of its parameters) and about
# 16 more such vectors at a time (points, gradients, direction, trial, the network's own, a
# round's temporaries): a chunk of L-BFGS members is cut to keep those within this many bytes.
# (The rows and activations are not counted: a full-batch step's are the same whatever the optimiser.)
LBFGS_STACK_BYTES = 1 << 30
LBFGS_VECTORS_BESIDE_PAIRS = 16


def lbfgs_stack_members(parameters: int, history_size: int) -> int:
    """How many L-BFGS members of ``parameters`` each one stack holds within ``LBFGS_STACK_BYTES``."""
    return max(1, LBFGS_STACK_BYTES // ((2 * history_size + LBFGS_VECTORS_BESIDE_PAIRS) * parameters * 8))


def why_not_stacked(cfg: DictConfig, bundle: DataBundle) -> str | None:
    """None when a batchable job (:func:`why_not_batchable`) gains from a stack on this data, else why not."""
    if OPTIMIZERS[cfg.optim._target_] != "lbfgs":
        return None
    lbfgs_settings(cfg)  # a bad setting fails its own job (as an ordinary one), not the stack
    widths = [math.prod(bundle.input_shape), *(int(width) for width in cfg.model.hidden_sizes), bundle.n_outputs]
    parameters = sum((n_in + 1) * n_out for n_in, n_out in zip(widths, widths[1:]))
    if parameters > LBFGS_MAX_STACKED_PARAMETERS:
        return (f"L-BFGS on {parameters:,} parameters is not stacked (up to {LBFGS_MAX_STACKED_PARAMETERS:,}: "
                "past that a stack was not measured to save time)")
    return None


def stack_key(cfg: DictConfig) -> str:
    """Jobs with equal stack keys differ only in batchable values."""
    reduced = resolved_settings(cfg)
    for key in BATCHABLE_KEYS:
        *parents, leaf = key.split(".")
        node = reduced
        for parent in parents:
            node = node.get(parent) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return settings_hash(reduced)


def stack_spec(cfg: DictConfig, bundle: DataBundle, batch_size: int) -> StackSpec:
    stopping = instantiate(cfg.stopping)
    kind = OPTIMIZERS[cfg.optim._target_]
    return StackSpec(
        task=Task(bundle.task, bundle.n_outputs),
        activation=cfg.model.activation,
        optimizer=kind,
        batch_size=batch_size,
        max_epochs=int(cfg.trainer.max_epochs),
        monitor=stopping.monitor,
        patience=int(stopping.patience),
        tol=float(stopping.tol),
        restore_best=bool(stopping.restore_best),
        rule=stopping.rule,
        betas=tuple(cfg.optim.get("betas", (0.9, 0.999))),
        eps=float(cfg.optim.get("eps", 1e-8)),
        nesterov=bool(cfg.optim.get("nesterov", False)),
        fused=bool(cfg.optim.get("fused", False)),
        divergence_factor=float(stopping.divergence_factor),
        lbfgs=lbfgs_settings(cfg) if kind == "lbfgs" else None,
    )


def lbfgs_settings(cfg: DictConfig) -> dict:
    """The L-BFGS settings of ``optim``, checked by the optimiser itself (a bad value: NnexpError)."""
    optimizer = call_factory("optim", instantiate(cfg.optim), [torch.nn.Parameter(torch.zeros(1))])
    return {key: value for key, value in optimizer.settings.items() if key != "params"}


def build_members(cfg: DictConfig, bundle: DataBundle, memo: dict) -> list[tuple[int | None, MemberSpec, int, list, int]]:
    """(fold or None, member, batch size, layer table, parameter count) for each fit of the job,
    built by the sequential path's own functions: the same scaled rows and seeded initial weights.

    ``memo`` is shared by the jobs of one stack, which differ only in batchable values: members
    with the same seed start from the same weights, and those also on the same fold train on
    the same rows, so each is made once per stack and copied.
    """
    if "folds" not in memo:  # the same for every job of the stack
        memo["stopping"] = instantiate(cfg.stopping)
        memo["folds"] = fold_indices(bundle, int(cfg.cv)) if int(cfg.cv) > 1 else [(None, None)]
    stopping = memo["stopping"]
    members = []
    dropout = float(cfg.model.get("dropout", 0) or 0)
    for number, (fit_rows, holdout_rows) in enumerate(memo["folds"]):
        if (number, cfg.seed) not in memo:
            memo[number, cfg.seed] = make_fit_data(bundle, fit_rows=fit_rows, holdout_rows=holdout_rows,
                                                  validation_fraction=fit_validation_fraction(bundle, stopping), seed=cfg.seed,
                                                  **fit_data_options(cfg, bundle))
        data = memo[number, cfg.seed]
        if ("net", cfg.seed, dropout) not in memo:
            net = prepare_network(cfg, factories_for(cfg, memo), bundle, data)
            # The global CPU generator as the sequential fit finds it: its dropout masks come from here.
            memo["net", cfg.seed, dropout] = net, torch.get_rng_state()
        net, rng_state = memo["net", cfg.seed, dropout]
        spec = MemberSpec(
            data=data, network=copy.deepcopy(net.module), seed=int(cfg.seed), lr=float(cfg.optim.get("lr", 0) or 0),
            alpha=float(cfg.regularization.get("alpha", 0) or 0), l1=float(cfg.regularization.get("l1", 0) or 0),
            momentum=float(cfg.optim.get("momentum", 0) or 0), dropout=dropout, rng_state=rng_state,
        )
        # `auto` follows the fold; L-BFGS fits the whole fold at once
        batch_size = resolve_batch_size(cfg.batch_size, len(data.train), full_batch_only=is_lbfgs(net.optimizer_factory))
        members.append((number if int(cfg.cv) > 1 else None, spec, batch_size, net.layers, net.params))
    return members


def factories_for(cfg: DictConfig, memo: dict) -> Factories:
    """The model and optimiser factories of a stack's first job with this dropout rate (the model
    config differs between members only in ``model.dropout``)."""
    dropout = cfg.model.get("dropout", 0)
    if ("factories", dropout) not in memo:
        memo["factories", dropout] = Factories.from_config(cfg, trainer=False)
    return memo["factories", dropout]
