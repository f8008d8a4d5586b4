"""A job's link to its Optuna trial: it reopens the trial from the study's storage (so it works in
any process the launcher runs it in), reports each epoch's score, and asks the study's pruner."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from nnexp.studies.storage import StorageSpec, open_storage

WORKER_ATTR = "nnexp"  # a trial's user attr: its worker (host, pid), job dir, fixed overrides and pruner config
PRUNER_KEY = "pruner"


@dataclass
class TrialLink:
    """Reports a job's epoch scores to its trial (``trial.report``) and says when to prune.

    Only every ``every``-th epoch is reported: a report and the pruner's look at the other
    trials are storage round trips (about 5 ms with sqlite), which on a small net cost more than
    the epoch itself. Every trial reports at the same epochs, so the pruners compare like with like."""

    trial: object  # optuna.trial.Trial
    every: int = 1

    @classmethod
    def from_config(cls, node: DictConfig) -> "TrialLink":
        """Reopen trial ``node.number`` of study ``node.study`` in ``node.storage``."""
        import optuna
        from hydra.utils import instantiate

        storage = open_storage(StorageSpec(str(node.storage), heartbeat_interval=None))
        study_id = storage.get_study_id_from_name(str(node.study))
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, int(node.number))
        pruner_config = storage.get_trial_user_attrs(trial_id).get(WORKER_ATTR, {}).get(PRUNER_KEY)
        pruner = instantiate(pruner_config) if pruner_config else optuna.pruners.NopPruner()
        study = optuna.load_study(study_name=str(node.study), storage=storage, pruner=pruner,
                                  sampler=optuna.samplers.RandomSampler())  # never samples here
        return cls(optuna.trial.Trial(study, trial_id), int(node.get("every", 1)))

    @property
    def number(self) -> int:
        return self.trial.number

    def due(self, step: int) -> bool:
        """Whether ``step`` (an epoch) is one to report."""
        return step % self.every == 0

    def report(self, value: float, step: int) -> bool:
        """Report ``value`` at ``step`` (an epoch); True when the pruner stops the trial."""
        self.trial.report(float(value), step)
        return self.trial.should_prune()


def trial_link(cfg: DictConfig) -> TrialLink | None:
    """The job's trial link when nnexp's Optuna sweeper launched it with a pruner, else None."""
    node = cfg.get("trial")
    if node is None or not OmegaConf.is_dict(node):
        return None
    return TrialLink.from_config(node)
