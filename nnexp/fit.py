"""One fit: build the network, train it on a FitData with Lightning, and score every split. The
types the stages hand each other live in ``nnexp.handoff``, which needs no Lightning."""

from __future__ import annotations

import time
from typing import Callable

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from nnexp.config import resolve_batch_size
from nnexp.data.bundle import DataBundle
from nnexp.data.splits import FitData
from nnexp.errors import ConfigError
from nnexp.factory import call_factory, instantiate
from nnexp.handoff import Factories, FitResult, Network
from nnexp.metrics import FitMetrics
from nnexp.models.mlp import layer_summary, load_initial_parameters, parameter_count
from nnexp.models.task import Task
from nnexp.resources import check_fits
from nnexp.sklearn_random import draws_for
from nnexp.training.hardware import resolve_precision
from nnexp.training.lbfgs import is_lbfgs
from nnexp.training.module import NetModule
from nnexp.training.stopping import StoppingRule


def build_network(factories: Factories, input_shape: tuple[int, ...], n_outputs: int) -> torch.nn.Module:
    """Call the ``_partial_`` model factory with the data's example shape and output width."""
    check_fits(factories.model, input_shape, n_outputs)  # before any of it is allocated
    return call_factory("model", factories.model, input_shape=input_shape, out_features=n_outputs)


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
            package = getattr(cause, "name", None) or name  # the optional loggers are named as their packages
            fix = f"pip install {package}"
            first_line = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
            raise ConfigError("logger", name, f"a logger whose package is installed: {fix} ({first_line.rstrip('.')})") from None
    return loggers


def build_trainer(
    cfg: DictConfig, factories: Factories, callbacks: list, loggers: list, precision: str = "32-true"
) -> pl.Trainer:
    """The Lightning Trainer; a setting Lightning refuses (an accelerator this machine lacks, an
    unknown precision, a wrong type) is a config error naming the key, not a traceback."""
    try:
        return factories.trainer(callbacks=callbacks, logger=loggers or False, precision=precision)
    except Exception as error:  # Hydra wraps the constructor's error in an InstantiationException
        cause = error.__cause__ or error
        if not isinstance(cause, (MisconfigurationException, ValueError, TypeError, ImportError)):
            raise
        if isinstance(cause, (MisconfigurationException, ImportError)) and trainer_key(cfg, cause) in (None, "trainer.accelerator"):
            # Lightning's words for a device it cannot use, or one whose package is not installed (TPUs: torch_xla)
            raise ConfigError(
                "trainer.accelerator", cfg.trainer.get("accelerator"),
                f"a device this machine has ({first_line(cause)}); use trainer=cpu or trainer=auto",
            ) from None
        raise trainer_refusal(cfg, cause) from None


def trainer_key(cfg: DictConfig, cause: BaseException, as_setting: bool = False) -> str | None:
    """The trainer setting Lightning's message names, if it names one; ``as_setting``: only one it
    names as a setting (``Trainer(gradient_clip_val=1)``), not as a word."""
    message = str(cause)
    named = [name for name in cfg.trainer if f"{name}=" in message]
    if not named and not as_setting:
        named = [name for name in cfg.trainer if name in message]
    return f"trainer.{named[0]}" if named else None


def trainer_refusal(cfg: DictConfig, cause: BaseException) -> ConfigError:
    """A setting Lightning's Trainer refuses, as a config error naming it (the trainer's settings
    when the message names none)."""
    key = trainer_key(cfg, cause) or "trainer"
    value = OmegaConf.select(cfg, key) if key != "trainer" else "(its settings)"
    return ConfigError(key, value, f"a value Lightning's Trainer accepts with nnexp ({first_line(cause)})")


def first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def prepare_network(cfg: DictConfig, factories: Factories, bundle: DataBundle, data: FitData, describe: bool = True) -> Network:
    """Seed and build the network. ``describe`` (a job's first fit) also checks the optimiser's
    arguments before any training and adds the layer table (a forward pass with hooks); a CV
    job's later folds skip both (each factory call costs about 3 ms in Hydra's target policy)."""
    pl.seed_everything(cfg.seed, verbose=False)
    network = build_network(factories, bundle.input_shape, bundle.n_outputs)
    load_initial_parameters(network, draws_for(cfg, bundle), data.train.X.dtype)  # init=sklearn: scikit-learn's random_state
    optimizer_factory = factories.optimizer
    if describe:
        call_factory("optim", optimizer_factory, network.parameters())  # bad arguments fail here, not mid-fit
    full_batch_only = is_lbfgs(optimizer_factory)
    batch_size = resolve_batch_size(cfg.batch_size, len(data.train), full_batch_only)
    layers = layer_summary(network, tuple(data.train.X.shape[1:])) if describe else []
    return Network(network, optimizer_factory, batch_size, layers, parameter_count(network))


def fit_and_score(
    cfg: DictConfig,
    factories: Factories,
    bundle: DataBundle,
    data: FitData,
    stopping: StoppingRule,
    penalty,
    progress_factory: Callable[[], pl.Callback | None] | None = None,
    loggers: list | None = None,
    describe: bool = True,
    history_file=None,
    trial=None,
) -> FitResult:
    """Train a fresh network on ``data`` and score it on every split it has. ``progress_factory``
    makes the fit's progress display; ``history_file`` (a path) gets the history rows epoch by
    epoch, for watching the run; ``trial`` (a ``TrialLink``) gets each epoch's held-out score,
    and its pruner may stop the fit (status ``pruned``)."""
    net = prepare_network(cfg, factories, bundle, data, describe)
    task = Task(bundle.task, bundle.n_outputs)
    module = NetModule(
        net.module, task, data, net.optimizer_factory, factories.schedule, penalty, net.batch_size, cfg.seed,
        compile_forward=bool(cfg.get("compile", False)), divergence_factor=stopping.divergence_factor,
    )
    callbacks = stopping.callbacks() + [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    progress = progress_factory() if progress_factory else None
    if progress is not None:
        callbacks.append(progress)
    if history_file is not None:
        from nnexp.training.callbacks import HistoryFile

        callbacks.append(HistoryFile(history_file))
    pruning = None
    if trial is not None:
        from nnexp.training.callbacks import TrialPruning

        splits = data.named_splits()
        pruning = TrialPruning(trial, "holdout" if "holdout" in splits else "val" if "val" in splits else "train")
        callbacks.append(pruning)
    precision = resolve_precision(cfg.trainer.get("precision", "auto"), net.module, str(cfg.trainer.get("accelerator", "cpu")))
    trainer = build_trainer(cfg, factories, callbacks, loggers or [], precision)

    started = time.perf_counter()
    try:
        trainer.fit(module)
    except MisconfigurationException as refused:  # a trainer setting nnexp's loop cannot take (gradient clipping)
        if trainer_key(cfg, refused, as_setting=True) is None:  # another component's (a callback's): its own message
            raise
        raise trainer_refusal(cfg, refused) from None
    except SystemExit:
        if trainer.interrupted:  # Lightning turns Ctrl-C into exit(1); nnexp reports it as Ctrl-C
            raise KeyboardInterrupt from None
        raise
    fit_seconds = time.perf_counter() - started
    module.take_handoff(trainer.callback_metrics)

    if module.diverged_epoch is not None:
        status, reason = "diverged", "diverged"
    elif pruning is not None and pruning.pruned_epoch is not None:
        status, reason = "pruned", "pruned"
    else:
        status = "ok"
        stopped_early = any(getattr(callback, "stopped_epoch", 0) > 0 for callback in trainer.callbacks)
        if module.stop_reason:  # the optimiser's own (L-BFGS)
            reason = module.stop_reason
        elif module.converged:
            reason = "converged"
        else:
            reason = stopping.reason if stopped_early else "max_epochs"
    metrics = FitMetrics(
        status=status, stop_reason=reason, epochs=len(module.history), max_epochs=trainer.max_epochs,
        fit_seconds=fit_seconds, params=net.params, batch_size=net.batch_size, n_train=len(data.train),
        precision=precision, layers=net.layers, **module.final, **module.lbfgs_counts,
    )
    network = net.module.to("cpu").to(memory_format=torch.contiguous_format)
    return FitResult(metrics, module.history, network, data)
