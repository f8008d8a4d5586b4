"""A job's link to its Optuna trial: it reopens the trial from the study's storage (so it works in
any process the launcher runs it in), reports each epoch's score, and asks the study's pruner."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from nnexp.studies.storage import StorageSpec, open_storage

PRUNER_ATTR = "nnexp_pruner"  # the trial's user attr holding its sweep's pruner config


@dataclass
class TrialLink:
    """Reports a job's epoch scores to its trial (``trial.report``) and says when to prune."""

    trial: object  # optuna.trial.Trial

    @classmethod
    def from_config(cls, node: DictConfig) -> "TrialLink":
        """Reopen trial ``node.number`` of study ``node.study`` in ``node.storage``."""
        import optuna
        from hydra.utils import instantiate

        storage = open_storage(StorageSpec(str(node.storage), heartbeat_interval=None))
        study_id = storage.get_study_id_from_name(str(node.study))
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, int(node.number))
        pruner_config = storage.get_trial_user_attrs(trial_id).get(PRUNER_ATTR)
        pruner = instantiate(pruner_config) if pruner_config else optuna.pruners.NopPruner()
        study = optuna.load_study(study_name=str(node.study), storage=storage, pruner=pruner,
                                  sampler=optuna.samplers.RandomSampler())  # never samples here
        return cls(optuna.trial.Trial(study, trial_id))

    @property
    def number(self) -> int:
        return self.trial.number

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
