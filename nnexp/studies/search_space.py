"""The Optuna search space from Hydra's sweep syntax, as hydra-optuna-sweeper users write it:
``interval(a, b)``, ``int(interval(a, b))``, ``tag(log, interval(a, b))``, ``choice(...)``,
``range(start, stop, step)`` and fixed values."""

from __future__ import annotations

from dataclasses import dataclass

from hydra.core.override_parser.types import IntervalSweep, Override, RangeSweep, Transformer

from nnexp.errors import ConfigError
from nnexp.store import chooses_data


@dataclass
class SearchSpace:
    """Optuna distributions by override key, and the fixed overrides every trial gets."""

    distributions: dict
    fixed: list[str]
    data: str = ""  # the identity of the data every trial trains on (``data_identity``)

    def overrides(self, params: dict) -> list[str]:
        """A trial's job overrides: the fixed ones, then each sampled value."""
        return self.fixed + [f"{key}={value}" for key, value in params.items()]


def written(override: Override) -> str:
    """The override's value as the user wrote it."""
    return override.input_line.split("=", 1)[1]


def distribution(override: Override):
    """The Optuna distribution a sweep override describes."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    value = override.value()
    key = override.get_key_element()
    if override.is_choice_sweep() or (isinstance(value, RangeSweep) and value.shuffle):
        return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))
    if isinstance(value, RangeSweep):
        # range(start, stop, step) as Hydra means it everywhere else: ``stop`` is excluded.
        values = list(override.sweep_iterator())
        if not values:
            raise ConfigError(key, written(override), "a range with at least one value")
        if all(isinstance(v, int) for v in (value.start, value.stop, value.step)):
            return IntDistribution(values[0], values[-1], step=int(value.step))
        return FloatDistribution(float(values[0]), float(values[-1]), step=float(value.step))
    if isinstance(value, IntervalSweep):
        log = "log" in value.tags
        if log and min(value.start, value.end) <= 0:
            raise ConfigError(key, written(override), "positive bounds for tag(log, interval(...))")
        if value.start > value.end:
            raise ConfigError(key, written(override), "interval(low, high) with low <= high")
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log)
        return FloatDistribution(float(value.start), float(value.end), log=log)
    raise ConfigError(key, written(override), "interval(...), choice(...), range(...) or a fixed value")


def search_space(overrides: list[Override], data: str = "") -> SearchSpace:
    """Split parsed overrides into distributions (sweeps) and fixed overrides (everything else);
    ``data``: the identity of the data the trials train on."""
    distributions, fixed = {}, []
    for override in overrides:
        if override.is_sweep_override():
            distributions[override.get_key_element()] = distribution(override)
        else:
            fixed.append(override.input_line)
    if not distributions:
        raise ConfigError("hydra.sweeper.params", None, "at least one swept key, e.g. 'optim.lr: tag(log, interval(1e-4, 1e-1))'")
    return SearchSpace(distributions, fixed, data)


def data_identity(config) -> str:
    """A hash of the sweep's resolved data config: the same for the same data however it is
    spelt (``data=breast_cancer`` or the default; ``data.path=./a.csv`` or ``a.csv`` once resolved)."""
    from omegaconf import OmegaConf

    from nnexp.store import settings_hash

    if "data" not in config:
        return ""
    try:
        data = OmegaConf.to_container(config.data, resolve=True)
    except Exception:  # noqa: BLE001  (a value resolved only in a job: compare the config as written)
        data = OmegaConf.to_container(config.data, resolve=False)
    return settings_hash({"data": data})


def refuse_other_data(study, space: SearchSpace) -> None:
    """Refuse to add trials to a study whose trials were run on other data (another sweep's, under
    the same study name and storage): their scores are not comparable, the study's trial count
    would be met by them, and its best would be theirs. Other fixed settings may differ between
    a study's workers, as Optuna allows (a longer budget for later trials, say)."""
    from nnexp.studies.trial_link import WORKER_ATTR

    for trial in study.get_trials(deepcopy=False):
        info = trial.user_attrs.get(WORKER_ATTR, {})
        if info.get("data") and space.data and info["data"] != space.data:
            shown = " ".join(o for o in info.get("fixed", []) if chooses_data(o)) or "the default data"
            raise ConfigError("hydra.sweeper.study_name", study.study_name,
                              f"a study of this sweep's data; its trials were run on other data ({shown}; trial {trial.number}): "
                              "give these trials a study of their own (hydra.sweeper.study_name=...)")
