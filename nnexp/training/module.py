"""The one LightningModule every network trains in.

Lightning sees one training step per epoch: the step runs the whole epoch over in-memory
tensors (see ``nnexp.training.epochs``). On small tabular data an epoch is about a millisecond,
while Lightning's automatic optimisation costs ~0.36 ms per step and each ``self.log`` key
~0.3 ms, so paying them per minibatch would triple the fit time. Epoch metrics are published
once per epoch, straight to ``trainer.callback_metrics`` (read by EarlyStopping and checkpoint
callbacks) and to the loggers.
"""

from __future__ import annotations

import contextlib
import time
from typing import Callable

import pytorch_lightning as pl
import torch
from torch import nn

from nnexp.data.splits import FitData, TensorSplit
from nnexp.models.cnn import is_convolutional
from nnexp.models.task import Task, target_total_variance
from nnexp.sklearn_random import epoch_orders
from nnexp.training.epochs import lbfgs_fit, minibatch_epoch, torch_lbfgs_epoch
from nnexp.training.lbfgs import LBFGS
from nnexp.training.penalty import WeightPenalty, penalized_weights
from nnexp.training.schedules import make_scheduler, step_scheduler
from nnexp.training.stopping import DIVERGENCE_FACTOR, diverged, divergence_reference

EVAL_CHUNK_ROWS = 8192  # tabular rows per evaluation forward pass; images use IMAGE_CHUNK_ROWS
IMAGE_CHUNK_ROWS = 1024
HANDOFF_KEY = "nnexp_handoff"


class NetModule(pl.LightningModule):
    """Trains ``network`` on ``data`` for ``task`` with a ``_partial_`` optimiser and schedule factory."""

    def __init__(
        self,
        network: nn.Module,
        task: Task,
        data: FitData,
        optimizer_factory: Callable,
        scheduler_factory: Callable | None = None,
        penalty: WeightPenalty | None = None,
        batch_size: int = 200,
        seed: int = 0,
        compile_forward: bool = False,
        divergence_factor: float = DIVERGENCE_FACTOR,
    ):
        super().__init__()
        self.automatic_optimization = False
        self.network, self.task, self.data = network, task, data
        self.optimizer_factory, self.scheduler_factory = optimizer_factory, scheduler_factory
        self.penalty = penalty or WeightPenalty(alpha=0.0)
        self.batch_size, self.seed, self.compile_forward = int(batch_size), seed, compile_forward
        self.divergence_factor = float(divergence_factor)
        self.history: list[dict[str, float]] = []
        self.diverged_epoch: int | None = None
        self.converged = False
        self.stop_reason: str | None = None  # set when the optimiser itself ends the fit (L-BFGS)
        self.lbfgs_counts: dict[str, int] = {}
        self.final: dict[str, float] = {}  # every split's loss and score once fitting ends (on_fit_end)
        self.scheduler = None
        self._splits: dict[str, TensorSplit] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.network.parameters())
        # nnexp steps the schedule itself (once per epoch, manual optimisation), so Lightning
        # never needs to know about it; ReduceLROnPlateau gets the training loss.
        if not isinstance(optimizer, LBFGS):  # L-BFGS has no learning rate to schedule
            self.scheduler = make_scheduler(self.scheduler_factory, optimizer, len(self.data.train))
        return optimizer

    def train_dataloader(self):
        # One item per epoch: the step fetches its minibatches from the device-resident tensors.
        return [0]

    def on_fit_start(self) -> None:
        self._fit_started = time.perf_counter()
        self._splits = self.device_splits()
        self._orders = epoch_orders(self.data.orders_state, self.seed, self.device)
        self._weights = penalized_weights(self.network)
        self._train_variance = target_total_variance(self.task, self._splits["train"].y)
        self._divergence_reference = divergence_reference(self.task.kind, self._splits["train"].y)
        # torch.compile wraps the forward pass the epochs call; evaluation, penalties and saving use
        # the plain module, whose parameters the compiled one shares.
        self._model = torch.compile(self.network) if self.compile_forward else self.network
        if self.trainer.world_size > 1:
            from nnexp.training.distributed import broadcast_parameters

            broadcast_parameters(self.network)

    def on_train_end(self) -> None:
        # The process that trained scores the final weights (or the best: BestWeights loads them
        # in its own on_train_end, which Lightning calls first) while they and the splits are still
        # on the training device (the strategy's teardown, next, moves the module to the CPU), and
        # logs them as the loggers' last row, before Lightning finalizes them. A launching process
        # that spawned the training (trainer=ddp) logs nothing: its own logger would start the
        # files afresh over the rows the spawned ones wrote.
        self.final = self.final_metrics()
        for logger in self.loggers:
            logger.log_metrics({k: v for k, v in self.final.items() if not k.startswith("holdout")}, step=len(self.history))
        # Spawned processes hand their results back to the launching one through callback_metrics
        # (with the weights); the epoch history, stop flags and final scores travel the same way.
        # Always: one spawned process (trainer=ddp on one device) has world size 1 and trains away
        # from the launching process all the same; in a run that is not spawned, take_handoff drops it.
        self.trainer.callback_metrics[HANDOFF_KEY] = {
            "history": self.history, "diverged_epoch": self.diverged_epoch or 0, "converged": self.converged,
            "stop_reason": self.stop_reason or "", "lbfgs_counts": self.lbfgs_counts, "final": self.final,
        }

    def take_handoff(self, callback_metrics: dict) -> None:
        """Adopt the history, stop flags and final scores returned by spawned training processes."""
        handoff = callback_metrics.pop(HANDOFF_KEY, None)
        if handoff and not self.final:
            self.history = handoff["history"]
            self.diverged_epoch = handoff["diverged_epoch"] or None
            self.converged = handoff["converged"]
            self.stop_reason = handoff["stop_reason"] or None
            self.lbfgs_counts = handoff["lbfgs_counts"]
            self.final = handoff["final"]

    def on_train_start(self) -> None:
        self._optimizer = self.optimizers(use_pl_optimizer=False)  # asked once, not every epoch

    def training_step(self, batch, batch_idx):
        optimizer = self._optimizer
        train = self._splits["train"]
        if isinstance(optimizer, LBFGS):
            self._fit_lbfgs(optimizer, train)
            return None
        if isinstance(optimizer, torch.optim.LBFGS):
            result, self.converged = torch_lbfgs_epoch(self._model, self.task, optimizer, train.X, train.y, self.penalty, self._weights)
        else:
            result = minibatch_epoch(
                self._model, self.task, optimizer, train.X, train.y,
                min(self.batch_size, len(train)), self._orders, self.penalty, self._weights,
            )
        metrics = self._epoch_metrics(result.loss, result.score_sum, optimizer.param_groups[0].get("lr", float("nan")))
        self._publish(metrics)
        if diverged(metrics["train_loss"], self._divergence_reference, self.divergence_factor):
            self.diverged_epoch = self.current_epoch + 1
            self.trainer.should_stop = True
            return None
        if self.converged:
            self.trainer.should_stop = True
        step_scheduler(self.scheduler, metrics["train_loss"])
        return None

    def _epoch_metrics(self, loss, score_sum: torch.Tensor, lr: float) -> dict[str, float]:
        """Training loss and running score, and the validation split's, with one host synchronisation."""
        train = self._splits["train"]
        values = {
            "train_loss": torch.as_tensor(loss, device=score_sum.device),
            "train_score": self.task.running_score(score_sum, len(train), self._train_variance),
        }
        if "val" in self._splits:
            values["val_loss"], values["val_score"] = self.evaluate(self._splits["val"])
        metrics = dict(zip(values, torch.stack([v.double() for v in values.values()]).tolist()))
        if isinstance(loss, float):  # L-BFGS hands over scipy's float64 loss: keep it exact
            metrics["train_loss"] = loss
        metrics["lr"] = lr
        metrics["seconds"] = time.perf_counter() - self._fit_started
        return metrics

    def _fit_lbfgs(self, optimizer: LBFGS, train: TensorSplit) -> None:
        """The whole L-BFGS fit in this one Lightning epoch; the history gets a row per iteration."""

        def on_iteration(iteration: int, loss: float, score_sum: torch.Tensor) -> None:
            self._publish(self._epoch_metrics(loss, score_sum, float("nan")), epoch=iteration)

        outcome = lbfgs_fit(self._model, self.task, optimizer, train.X, train.y, self.penalty, self._weights, on_iteration)
        self.lbfgs_counts = {"iterations": outcome.iterations, "function_evaluations": outcome.evaluations}
        if diverged(outcome.loss, self._divergence_reference, self.divergence_factor):
            self.diverged_epoch = max(outcome.iterations, 1)
        else:
            self.stop_reason = outcome.reason
        self.trainer.should_stop = True

    def _publish(self, metrics: dict[str, float], epoch: int | None = None) -> None:
        epoch = epoch if epoch is not None else self.current_epoch + 1
        self.history.append({"epoch": epoch, **metrics})
        callback_metrics = self.trainer.callback_metrics
        for key, value in metrics.items():
            if key.endswith(("_loss", "_score")):  # what EarlyStopping or a checkpoint can monitor
                callback_metrics[key] = torch.tensor(value)
        for logger in self.loggers:
            logger.log_metrics(metrics, step=epoch)

    def device_splits(self) -> dict[str, TensorSplit]:
        """The splits on the training device, once. Conv nets and their images go channels_last
        (NHWC), which oneDNN and cuDNN run fastest (10k -> 14k images/s for the default CNN here)."""
        splits = {name: split.to(self.device) for name, split in self.data.named_splits().items()}
        if is_convolutional(self.network):
            self.network.to(memory_format=torch.channels_last)
            splits = {
                name: TensorSplit(split.X.contiguous(memory_format=torch.channels_last), split.y)
                if split.X.dim() == 4 else split
                for name, split in splits.items()
            }
        return splits

    @torch.no_grad()
    def outputs(self, X: torch.Tensor) -> torch.Tensor:
        """Raw network outputs in eval mode, in chunks so that large image sets fit in memory,
        under the trainer's precision (bf16 autocast when training used it)."""
        was_training = self.network.training
        self.network.eval()
        chunk = IMAGE_CHUNK_ROWS if X.dim() > 2 else EVAL_CHUNK_ROWS
        precision = self._trainer.precision_plugin.forward_context() if self._trainer else contextlib.nullcontext()
        try:
            # Inputs follow the network's dtype: an L-BFGS fit hands a float64 network to its hooks.
            dtype = next(self.network.parameters()).dtype
            with precision:
                return torch.cat([self.network(X[i : i + chunk].to(dtype)).float() for i in range(0, len(X), chunk)])
        finally:
            self.network.train(was_training)

    def evaluate(self, split: TensorSplit) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean loss (``Task.split_loss``, without penalty) and score of a split, as device tensors."""
        output = self.outputs(split.X)
        return self.task.split_loss(output, split.y), self.task.score(output, split.y)

    def split_score(self, name: str) -> float:
        """The current score on split ``name`` (the epoch's own row when it has one)."""
        row = self.history[-1] if self.history else {}
        if f"{name}_score" in row:
            return float(row[f"{name}_score"])
        return float(self.evaluate(self._splits[name])[1])

    def final_metrics(self) -> dict[str, float]:
        """Loss and score of every split with the final (or restored best) weights."""
        splits = self._splits or self.device_splits()
        metrics: dict[str, float] = {}
        for name, split in splits.items():
            loss, score = self.evaluate(split)
            metrics[f"{name}_loss"], metrics[f"{name}_score"] = float(loss), float(score)
        return metrics
