"""A run's first stage: ``prepare(cfg) -> Plan``, everything its fits need, checked and loaded once."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from omegaconf import DictConfig

from nnexp.checks import Checked, check_run
from nnexp.config import resolve_batch_size
from nnexp.data.bundle import DataBundle
from nnexp.data.splits import FitData, make_fit_data
from nnexp.factory import instantiate
from nnexp.handoff import Factories, Network
from nnexp.provenance import write_provenance
from nnexp.sklearn_random import fit_data_options
from nnexp.results import CONFIG_FILE, config_yaml, write_text_atomic
from nnexp.store import job_key
from nnexp.training.hardware import auto_threads, step_work


@dataclass
class Plan:
    """A checked config with its data, identity and run dir. The constructors (penalty,
    factories) and the whole-training-split fit data are built on first use: a job whose result
    a batched stack trained needs none of them."""

    cfg: DictConfig
    key: str
    checked: Checked
    output_dir: Path

    @property
    def bundle(self) -> DataBundle:
        return self.checked.bundle

    @property
    def stopping(self):
        return self.checked.stopping

    @cached_property
    def penalty(self):
        return instantiate(self.cfg.regularization)

    @cached_property
    def factories(self) -> Factories:
        return Factories.from_config(self.cfg)

    @cached_property
    def fit_data(self) -> FitData:
        """The training split (less a validation split, when the stopping rule or
        ``data.validation_fraction`` asks for one), scaled, as tensors."""
        from nnexp.resources import check_run_fits

        # scikit-learn's split is drawn after its initial weights, which allocates them: a network
        # that cannot fit (in memory, or in its GPU's) is refused first, in one line.
        check_run_fits(self.cfg, self.factories.model, self.bundle.input_shape, self.bundle.n_outputs, len(self.bundle.y_train))
        return make_fit_data(self.bundle, validation_fraction=self.checked.validation_fraction, seed=self.cfg.seed,
                             **fit_data_options(self.cfg, self.bundle))

    @cached_property
    def network(self) -> Network:
        """A freshly built network with its layer table (for display; each fit builds its own)."""
        from nnexp.fit import prepare_network

        return prepare_network(self.cfg, self.factories, self.bundle, self.fit_data)

    @property
    def threads(self) -> int | None:
        """The run's intra-op threads (``threads``; ``auto`` counts an MLP's step, see ``auto_threads``)."""
        setting = self.cfg.get("threads", "auto")
        if setting != "auto" or self.cfg.model.get("_target_") != "nnexp.models.mlp.MLP":
            return auto_threads(setting, None)
        rows = resolve_batch_size(self.cfg.batch_size, len(self.bundle.y_train), full_batch_only=False)
        work = step_work(math.prod(self.bundle.input_shape), self.cfg.model.hidden_sizes, self.bundle.n_outputs, rows)
        return auto_threads(setting, work)


def prepare(cfg: DictConfig, key: str | None = None, checked: Checked | None = None) -> Plan:
    """Check the config and load its data (``nnexp.checks``, unless ``checked`` holds what the
    caller's early check found), make its run dir and save the composed config there. ``key``:
    the job's identity when the caller computed it already."""
    checked = checked or check_run(cfg)
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(output_dir / CONFIG_FILE, config_yaml(cfg))
    write_provenance(output_dir, str(cfg.trainer.get("accelerator", "cpu")))
    return Plan(cfg, key or job_key(cfg), checked, output_dir)
