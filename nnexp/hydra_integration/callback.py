"""Hydra callbacks: a single run's dir claimed before Hydra writes into it, and the sweep's
summary (and refit) when the multirun ends."""

from __future__ import annotations

from pathlib import Path

import sys

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict, read_write

from nnexp.claims import Claim, DirBusy


class SweepSummary(Callback):
    """Writes summary.csv at the sweep root, prints the ranking and refits; the figures and
    report.html are drawn in the background (``figures: background``) or before returning
    (``foreground``); with the sweep's ``plots=false`` no figure is drawn (report.html has the
    tables only) and matplotlib is never imported."""

    def __init__(self, figures: str = "background"):
        self.figures = figures

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        from nnexp.sweeps.summary import summarise

        sweep_dir = Path(config.hydra.sweep.dir)
        if sweep_dir.is_dir():
            from nnexp.provenance import write_provenance

            write_provenance(sweep_dir)  # not at the start: a sweeper may pick another dir (Optuna's second worker)
            target = str(config.hydra.launcher.get("_target_", ""))
            batched = target.endswith(("BatchedLauncher", "ClusterLauncher"))
            runner = None
            if config.get("refit", False):
                from nnexp.process import set_up_process

                set_up_process()  # the refit trains here, where a launcher of other processes (joblib) set up none
            if config.get("refit", False) and target.endswith("ClusterLauncher"):
                from nnexp.hydra_integration.cluster_launcher import cluster_refit

                runner = cluster_refit(config.hydra.launcher, sweep_dir)
            # plots=false: no figures for the sweep either (summary.csv and a report of tables only)
            summarise(sweep_dir, refit=bool(config.get("refit", False)), plots=bool(config.get("plots", True)),
                      figures=self.figures, batched=batched, refit_runner=runner)
            print_study_best(sweep_dir)


def print_study_best(sweep_dir: Path) -> None:
    """An Optuna sweep's last line: the best trial of the whole study, from every worker (this
    worker's summary above ranks only its own trials)."""
    from nnexp.results import STUDY_FILE, read_json

    if not (sweep_dir / STUDY_FILE).is_file():
        return
    from nnexp.studies.storage import open_study
    from nnexp.studies.summary import best_trial, trial_rows

    reference = read_json(sweep_dir / STUDY_FILE)
    study = open_study(reference["study"], reference["storage"])
    best = best_trial(study)
    if best is not None:
        command = next(row["command"] for row in trial_rows(study) if row["number"] == best.number)
        print(f"best of study {study.study_name} (every worker's trials; trial {best.number}, value {best.value:.4f}): {command}")


def run_dir_as_run_job_names_it(config: DictConfig) -> Path:
    """``hydra.run.dir`` as Hydra's run_job will resolve it, with ``HydraConfig`` pointed at this
    run (``${hydra:job.override_dirname}`` in it); Hydra calls ``on_run_start`` before that."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import flag_override

    from nnexp.compat import set_hydra_config

    previous = HydraConfig.instance().cfg
    try:
        with flag_override(config.hydra, "readonly", True):  # set_hydra_config sets it; put back as it was
            set_hydra_config(config)
            return Path(str(config.hydra.run.dir))
    finally:
        HydraConfig.instance().cfg = previous


class RunDirClaim(Callback):
    """A single run claims its run dir before Hydra writes into it (``nnexp.claims``). A dir
    that another run is writing, or that holds a finished run, is kept as it is: this run
    writes beside it, into ``<dir>-2`` (``-3`` ...), and says so in one line."""

    def __init__(self) -> None:
        self.claim: Claim | None = None

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        from nnexp.store import finished_record

        wanted = run_dir_as_run_job_names_it(config)
        for attempt in range(1, 1000):
            candidate = wanted if attempt == 1 else wanted.with_name(f"{wanted.name}-{attempt}")
            if finished_record(candidate) is not None:
                continue
            try:
                claim = Claim(candidate, "nnexp run", "give another hydra.run.dir")
            except DirBusy:
                continue
            except OSError:  # a dir that cannot be made: the run's own first write says so, in one line
                return
            if finished_record(candidate) is not None:  # finished between the look and the claim
                claim.release()
                continue
            self.claim = claim
            break
        else:
            return  # the job's own claim refuses it
        if candidate != wanted:
            print(f"note: {wanted} holds another run, which is kept; this run writes into {candidate}", file=sys.stderr)
            with read_write(config.hydra), open_dict(config.hydra):
                config.hydra.run.dir = str(candidate)

    def on_run_end(self, config: DictConfig, **kwargs) -> None:
        if self.claim is not None:
            self.claim.release()
            self.claim = None
