"""The shared runner: one config in, one trained and tested model and its run dir out."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from nnexp import console as show
from nnexp.config import check_config, resolve_batch_size
from nnexp.data.splits import make_fit_data
from nnexp.errors import ConfigError
from nnexp.factory import call_factory, instantiate
from nnexp.models.mlp import layer_summary, parameter_count
from nnexp.models.module import NetModule
from nnexp.models.task import Task
from nnexp.results import CONFIG_FILE, HISTORY_FILE, METRICS_FILE, write_history, write_json, write_text_atomic


def quiet_lightning() -> None:
    """Silence Lightning's start-up chatter; nnexp prints its own summary."""
    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*(does not have many workers|treespec|GPU available|TPU available).*")


def build_network(cfg: DictConfig, n_features: int, n_outputs: int) -> torch.nn.Module:
    """Instantiate the ``_partial_`` model factory with the data's input and output widths."""
    return call_factory("model", instantiate(cfg.model), in_features=n_features, out_features=n_outputs)


def build_loggers(cfg: DictConfig) -> list:
    """Instantiate every configured Lightning logger; a missing optional package gets a clear error."""
    loggers = []
    for name, logger_cfg in (cfg.get("logger") or {}).items():
        try:
            loggers.append(instantiate(logger_cfg))
        except Exception as error:  # Hydra wraps the constructor's error in an InstantiationException
            cause = error.__cause__ or error
            if not isinstance(cause, ImportError):
                raise
            raise ConfigError("logger", name, f"a logger whose package is installed ({cause})") from None
    return loggers


def build_trainer(cfg: DictConfig, callbacks: list) -> pl.Trainer:
    """The Lightning Trainer; an accelerator this machine lacks is a config error, not a traceback."""
    from lightning_fabric.utilities.exceptions import MisconfigurationException

    loggers = build_loggers(cfg)
    try:
        return instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    except Exception as error:  # Hydra wraps the constructor's error in an InstantiationException
        cause = error.__cause__ or error
        if not isinstance(cause, MisconfigurationException):
            raise
        raise ConfigError(
            "trainer.accelerator", cfg.trainer.get("accelerator"),
            f"a device this machine has ({cause}); use trainer=cpu or trainer=auto",
        ) from None


def run(cfg: DictConfig) -> float:
    """Train and test one configuration, write its run dir, and return the sweep objective.

    The objective is the validation score when there is a validation split, else the training
    score: a sweep never selects on test data.
    """
    check_config(cfg)
    quiet_lightning()
    console = show.make_console()
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(output_dir / CONFIG_FILE, OmegaConf.to_yaml(cfg, resolve=True))
    if not cfg.quiet:
        console.print(show.config_tree(cfg))

    bundle = instantiate(cfg.data).load()
    stopping = instantiate(cfg.stopping)
    penalty = instantiate(cfg.regularization)
    data = make_fit_data(bundle, validation_fraction=stopping.validation_fraction, seed=cfg.seed)
    task = Task(bundle.task, bundle.n_outputs)
    pl.seed_everything(cfg.seed, verbose=False)
    network = build_network(cfg, bundle.n_features, task.n_outputs)
    optimizer_factory = instantiate(cfg.optim)
    call_factory("optim", optimizer_factory, network.parameters())  # bad arguments fail here, not mid-fit
    full_batch_only = getattr(optimizer_factory, "func", None) is torch.optim.LBFGS
    batch_size = resolve_batch_size(cfg.batch_size, len(data.train), full_batch_only)
    layers = layer_summary(network, tuple(data.train.X.shape[1:]))
    params = parameter_count(network)
    if not cfg.quiet:
        console.print(show.layer_table(layers, params))
    if cfg.mode == "validate":
        console.print(f"[green]config OK[/]: {bundle.name}, {bundle.task}, {len(data.train)} training rows, {params:,} parameters")
        return float("nan")

    module = NetModule(
        network, task, data, optimizer_factory, instantiate(cfg.schedule), penalty, batch_size, cfg.seed
    )
    callbacks = stopping.callbacks() + [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    if not cfg.quiet:
        from nnexp.training.callbacks import EpochProgress

        callbacks.append(EpochProgress(console, task.score_name))
    trainer = build_trainer(cfg, callbacks)

    started = time.perf_counter()
    trainer.fit(module)
    fit_seconds = time.perf_counter() - started

    epochs = len(module.history)
    if module.diverged_epoch is not None:
        status, reason = "diverged", "diverged"
    else:
        status = "ok"
        stopped_early = any(getattr(callback, "stopped_epoch", 0) > 0 for callback in trainer.callbacks)
        reason = "converged" if module.converged else stopping.reason if stopped_early else "max_epochs"
    metrics = {
        "status": status,
        "stop_reason": reason,
        "data": bundle.name,
        "task": bundle.task,
        "score_name": task.score_name,
        **module.final_metrics(),
        "epochs": epochs,
        "fit_seconds": fit_seconds,
        "params": params,
        "batch_size": batch_size,
        "n_train": len(data.train),
        "seed": cfg.seed,
        "layers": layers,
    }
    for logger in trainer.loggers:
        logger.log_metrics({k: v for k, v in metrics.items() if k.startswith(("train_", "val_", "test_"))}, step=epochs)
        logger.finalize("success")
    write_history(output_dir / HISTORY_FILE, module.history)
    write_json(output_dir / METRICS_FILE, metrics)
    console.print(show.results_table(metrics))
    console.print(show.results_caption(metrics))
    if status == "diverged":
        lr = OmegaConf.select(cfg, "optim.lr")
        console.print(
            f"[bold red]diverged[/] at epoch {module.diverged_epoch}: the training loss became NaN or infinite; "
            f"lower optim.lr (now {lr}) or raise regularization.alpha"
        )
    if reason == "max_epochs" and stopping.monitor is not None:
        console.print(
            f"[yellow]note[/]: stopped at trainer.max_epochs={trainer.max_epochs} before {stopping.monitor} "
            "settled; raise trainer.max_epochs or optim.lr if the scores are still improving"
        )
    console.print(f"[dim]run dir: {output_dir}")
    objective = metrics.get("val_score", metrics["train_score"])
    return float("nan") if status == "diverged" else float(objective)
