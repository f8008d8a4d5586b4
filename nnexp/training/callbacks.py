"""Callbacks Lightning does not ship: best-weight restore in memory, scikit-learn's stopping
count, a history file that grows epoch by epoch, and a rich epoch bar."""

from __future__ import annotations

import copy
import csv
import math
import time
from pathlib import Path

import pytorch_lightning as pl
import torch


class BestWeights(pl.Callback):
    """Keep an in-memory copy of the weights with the best ``monitor`` value; load it when fitting ends.

    Lightning's ModelCheckpoint writes a file for every improvement; for the small nets here a
    copy in memory is faster and is what Keras' ``restore_best_weights`` and scikit-learn do.
    """

    def __init__(self, monitor: str, mode: str = "min"):
        self.monitor, self.mode = monitor, mode
        self.best_value = math.inf if mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self._state: dict[str, torch.Tensor] | None = None

    def _improved(self, value: float) -> bool:
        return value < self.best_value if self.mode == "min" else value > self.best_value

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            return
        if self._improved(float(value)):
            self.best_value, self.best_epoch = float(value), trainer.current_epoch + 1
            self._state = copy.deepcopy(pl_module.network.state_dict())

    def on_train_end(self, trainer, pl_module) -> None:
        # Before the module's own on_train_end, which scores the weights it ends with
        if self._state is not None:
            pl_module.network.load_state_dict(self._state)


class NoImprovementStopping(pl.Callback):
    """scikit-learn's stopping test after every epoch (see ``NoImprovementCount``).

    When the count runs out and the run's schedule can lower the rate (scikit-learn's
    ``adaptive``), the rate is divided instead and counting starts again; the fit stops once it
    cannot be lowered any more, as scikit-learn's ``trigger_stopping`` does.
    """

    def __init__(self, monitor: str, counter):
        self.monitor, self.counter = monitor, counter
        self.stopped_epoch = 0

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is None or trainer.should_stop:
            return
        if not self.counter.update(float(value)):
            return
        lower_rate = getattr(getattr(pl_module, "scheduler", None), "lower_rate", None)
        if lower_rate is not None and lower_rate():
            self.counter.reset()
            return
        self.stopped_epoch = trainer.current_epoch + 1
        trainer.should_stop = True


class HistoryFile(pl.Callback):
    """Append each epoch's history rows to ``path`` as they come, so that a long run can be
    watched (``tail -f``, ``nnexp-plot``); the runner rewrites the file whole when the fit ends."""

    def __init__(self, path):
        self.path = Path(path)
        self._written, self._off = 0, False
        self._file = self._writer = self._columns = None

    def __getstate__(self):
        # Spawned training processes get a copy that writes nothing: the launching process writes.
        return {"path": self.path, "_written": 0, "_file": None, "_writer": None, "_columns": None, "_off": True}

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        rows = pl_module.history[self._written :]
        if not rows or self._off:
            return
        if self._file is None:
            self._columns = list(rows[0])
            self._file = self.path.open("w", newline="")
            self._writer = csv.writer(self._file)
            self._writer.writerow(self._columns)
        self._writer.writerows([row.get(column, "") for column in self._columns] for row in rows)
        self._file.flush()
        self._written += len(rows)

    def on_train_end(self, trainer, pl_module) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class EpochProgress(pl.Callback):
    """A rich progress bar over epochs with the live loss and score, refreshed at most 10 times a second."""

    def __init__(self, console, score_name: str):
        self.console, self.score_name = console, score_name
        self._progress = self._task = None

    def __getstate__(self):
        # Spawned training processes get a silent copy: the console's stream cannot be pickled.
        return {"console": None, "score_name": self.score_name, "_progress": None, "_task": None}

    def on_train_start(self, trainer, pl_module) -> None:
        if self.console is None:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        # An L-BFGS fit is one Lightning epoch: the bar counts its iterations instead.
        lbfgs = getattr(pl_module.optimizers(use_pl_optimizer=False), "settings", {}).get("max_iter")
        from nnexp.notebook import in_notebook

        self._progress = in_notebook(Progress(
            TextColumn("[bold]iteration" if lbfgs else "[bold]epoch"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=self.console,
            refresh_per_second=10,
        ))
        self._progress.start()
        self._task = self._progress.add_task("fit", total=lbfgs or trainer.max_epochs, status="")
        self._last = 0.0
        self._rows = 0

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._progress is None:
            return
        now = time.perf_counter()
        advance, self._rows = len(pl_module.history) - self._rows, len(pl_module.history)
        if now - self._last < 0.1 and not trainer.should_stop:
            self._progress.update(self._task, advance=advance)
            return
        self._last = now
        self._progress.update(self._task, advance=advance, status=self._status(pl_module))

    def _status(self, pl_module) -> str:
        """The latest epoch's training loss and score (and validation score)."""
        last = pl_module.history[-1] if pl_module.history else {}
        status = f"loss {last.get('train_loss', float('nan')):.4f}  {self.score_name} {last.get('train_score', float('nan')):.4f}"
        if "val_score" in last:
            status += f"  val {self.score_name} {last['val_score']:.4f}"
        return status

    def on_train_end(self, trainer, pl_module) -> None:
        if self._progress is not None:  # the last epochs' rows, which the refresh limit may have skipped
            self._rows = len(pl_module.history)
            self._progress.update(self._task, completed=self._rows, total=self._rows, status=self._status(pl_module))
            self._progress.stop()


class TrialPruning(pl.Callback):
    """Report each epoch's score on ``split`` to an Optuna trial (a ``TrialLink``) and stop the
    fit when the study's pruner says so, as Optuna's Lightning integration does, but with the
    epoch's score on held-out rows: a CV fold's held-out rows, or the validation split."""

    def __init__(self, link, split: str):
        self.link, self.split = link, split
        self.pruned_epoch: int | None = None

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.should_stop or not pl_module.history:  # converged or diverged: the final score is told
            return
        epoch = int(pl_module.history[-1]["epoch"])
        if self.link.due(epoch) and self.link.report(pl_module.split_score(self.split), epoch):
            self.pruned_epoch = epoch
            trainer.should_stop = True
