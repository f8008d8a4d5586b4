"""The grid sweeper: every combination of the swept values, in batches, on Hydra's public ``Sweeper``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn
from hydra.errors import HydraException
from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig, OmegaConf

from nnexp.claims import Claim
from nnexp.errors import NnexpError
from nnexp.results import METRICS_FILE
from nnexp.hydra_integration.launcher import InProcessLauncher
from nnexp.sweeps.grid import SWEEP_RECORD, grid

log = logging.getLogger(__name__)


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep, with the sweep's dir (the CLI says what was kept there)."""

    def __init__(self, sweep_dir: Path):
        super().__init__(str(sweep_dir))
        self.sweep_dir = sweep_dir


class GridSweeper(Sweeper):
    """A grid search over ``key=a,b,c`` and ``range(...)`` overrides (and ``hydra.sweeper.params``),
    launched in batches of ``max_batch_size`` jobs (all at once when null). Each batch is
    validated before launch, through the in-process launcher's composition cache when it is the
    launcher (so every job is composed once), else by composing each job."""

    def __init__(self, max_batch_size: int | None = None, params: dict[str, str] | None = None):
        if max_batch_size is not None and int(max_batch_size) <= 0:
            raise HydraException(f"hydra.sweeper.max_batch_size={max_batch_size}: give a positive number, or null for one batch")
        self.max_batch_size = None if max_batch_size is None else int(max_batch_size)
        self.params = dict(params or {})
        self.config: DictConfig | None = None
        self.launcher = None
        self.hydra_context = None
        self.claim: Claim | None = None

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def batches(self, arguments: list[str]) -> list[list[list[str]]]:
        """The sweep's jobs, in launch batches."""
        lines = [f"{key}={value}" for key, value in self.params.items()] + list(arguments)
        jobs = grid(OverridesParser.create(config_loader=self.hydra_context.config_loader).parse_overrides(lines))
        size = self.max_batch_size or max(len(jobs), 1)
        return [jobs[start : start + size] for start in range(0, len(jobs), size)]

    def sweep(self, arguments: list[str]) -> Any:
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        # Held until this sweeper is let go, after the sweep's summary (or when the process ends).
        self.claim = Claim(sweep_dir, "nnexp sweep", "wait for that sweep to end (then nnexp resume=DIR finishes "
                           "this one), or give another hydra.sweep.dir")
        returns: list[Sequence[JobReturn]] = []
        first = 0
        try:
            batches = self.batches(arguments)
            self.refuse_another_sweeps_dir(sweep_dir, [job for batch in batches for job in batch])
            OmegaConf.save(self.config, sweep_dir / SWEEP_RECORD)  # what resume=DIR relaunches, and the summary's grid
            for batch in batches:
                self.validate_batch_is_legal(batch)
                results = self.launcher.launch(batch, initial_job_idx=first)
                for result in results:
                    _ = result.return_value  # raises a failed job's error, as Hydra's sweepers do
                first += len(batch)
                returns.append(results)
        except KeyboardInterrupt:
            self.ended_early()
            raise SweepInterrupted(sweep_dir) from None
        except BaseException:
            self.ended_early()
            raise
        return returns

    def refuse_another_sweeps_dir(self, sweep_dir: Path, jobs: list[list[str]]) -> None:
        """Refuse, before anything is written, a sweep whose job dirs hold finished jobs of other
        overrides: another sweep's, which this one would number over (its results would be read
        as this sweep's, and Hydra would rewrite their ``.hydra`` files). The same sweep launched
        again, or grown by new points at the end, goes on; a job of the same overrides whose
        config or data changed is its ``Job``'s to keep (``not run``)."""
        if not isinstance(self.launcher, InProcessLauncher) or not any(sweep_dir.glob(f"*/{METRICS_FILE}")):
            return  # a fresh dir (the usual case): no job composed ahead of its batch
        from nnexp.hydra_integration.sweep_job import job_dir
        from nnexp.results import OVERRIDES_FILE
        from nnexp.store import finished_record, launch_only

        def computed(overrides) -> list[str]:  # what a job's overrides say it computes (resume may add others)
            return sorted(str(override) for override in overrides if not launch_only(str(override)))

        for number, overrides in enumerate(jobs):
            config = self.launcher.number(self.launcher.prepare(list(overrides)), number)
            folder, subdir = job_dir(config), config.hydra.output_subdir
            if subdir is None or finished_record(folder) is None or not (folder / str(subdir) / OVERRIDES_FILE).is_file():
                continue
            stored = OmegaConf.load(folder / str(subdir) / OVERRIDES_FILE)
            if computed(stored) != computed(config.hydra.overrides.task):
                raise NnexpError(f"{sweep_dir} holds another sweep's finished jobs ({folder.name}: {' '.join(map(str, stored))}); "
                                 f"give another hydra.sweep.dir, or nnexp resume={sweep_dir} to finish that sweep")

    def ended_early(self) -> None:
        """A sweep that ends in an error (Ctrl-C, a stop, a bad job) lets its dir go now: a
        notebook's traceback keeps this sweeper alive, and ``nnexp resume=DIR`` must not be
        refused by a sweep that has already ended. Its live progress line stops too."""
        from nnexp.progress import stop_in

        self.claim.release()
        stop_in(self.hydra_context)

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        if not isinstance(self.launcher, InProcessLauncher):
            return super().validate_batch_is_legal(batch)
        for overrides in batch:
            self.launcher.prepare(list(overrides))
