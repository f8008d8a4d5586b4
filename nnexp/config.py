"""Checks on a composed config, so that a bad value stops the run before any work is done."""

from __future__ import annotations

import functools
import math
import numbers
import re

from omegaconf import DictConfig, OmegaConf

from nnexp.config_files import check_keys, check_path_names
from nnexp.errors import ConfigError, NnexpError

BATCH_SIZE_WORDS = ("auto", "full")
MODES = ("train", "validate", "params")


def _get(cfg: DictConfig, key: str):
    return OmegaConf.select(cfg, key, default=None)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_non_negative(cfg: DictConfig, key: str, meaning: str) -> None:
    value = _get(cfg, key)
    if value is not None and (not _is_number(value) or value < 0):
        raise ConfigError(key, value, f"a number >= 0 ({meaning})")


def non_finite_setting(settings, prefix: str = "") -> tuple[str, float] | None:
    """The first setting (a dotted key and its value) that is NaN or infinite, if any."""
    items = settings.items() if isinstance(settings, dict) else enumerate(settings) if isinstance(settings, list) else ()
    for key, value in items:
        path = f"{prefix}.{key}" if prefix and isinstance(key, str) else f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, float) and not math.isfinite(value):
            return path, value
        found = non_finite_setting(value, path)
        if found:
            return found
    return None


@functools.cache
def numeric_keys() -> frozenset[str]:
    """Every key that nnexp's own config files set to a number (``stopping.patience``,
    ``data.test_size`` ...): the types come from the configs, not from a list kept here."""
    return typed_keys(numbers.Real)


def typed_keys(kind: type) -> frozenset[str]:
    """Every key that nnexp's own config files set to a value of ``kind`` (bool is not a number here)."""
    import yaml
    from importlib import resources

    from nnexp.config_files import packaged_options

    keys = set()

    def walk(node, prefix):
        for key, value in (node or {}).items() if isinstance(node, dict) else ():
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict):
                walk(value, path)
            elif isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
                keys.add(path)

    walk(yaml.load(resources.files("nnexp.configs").joinpath("train.yaml").read_text(),
                   Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)), "")
    # Lightning's own groups take words for numbers (trainer.devices=auto): Lightning checks them.
    for group, _, node, global_package in packaged_options():
        if group not in ("hydra", "experiment", "sweep", "launcher", "trainer", "callbacks", "logger"):
            walk(node, "" if global_package else group)
    return frozenset(keys)


def setting(settings: dict, key: str):
    node = settings
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


@functools.cache
def switch_keys() -> frozenset[str]:
    """Every key that nnexp's own config files set to true or false (``plots``, ``data.scale`` ...)."""
    return typed_keys(bool)


def check_types(settings: dict) -> None:
    """A word where nnexp's configs have a number or a switch; a seed numpy cannot take."""
    for key in sorted(switch_keys()):
        if key.rpartition(".")[2].startswith("_"):  # _partial_: Hydra's own
            continue
        value = setting(settings, key)
        if value is not None and not isinstance(value, bool):
            raise ConfigError(key, value, "true or false")
    for key in sorted(numeric_keys()):
        value = setting(settings, key)
        if isinstance(value, (str, bool)):
            raise ConfigError(key, value, "a number")
        if key == "seed" or key.endswith("_seed"):
            if value is not None and (not isinstance(value, int) or not 0 <= value < 2**32):
                raise ConfigError(key, value, "a whole number from 0 to 2**32 - 1, e.g. 0")


def _whole(low: int):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low


def _at_least(low: float, strict: bool = False):
    return lambda v: _is_number(v) and (v > low if strict else v >= low)


def _seed(v) -> bool:
    return v is None or (isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32)


# Settings nnexp checks by one rule each: key -> (test, what is allowed). Keys in CHECKED_ELSEWHERE
# are checked by the component they configure, which raises ConfigError naming them.
RULES = {
    "schedule.step_size": (_whole(1), "a whole number of epochs >= 1 between rate cuts, e.g. 50"),
    "schedule.gamma": (_at_least(0, strict=True), "a factor > 0 the rate is multiplied by, e.g. 0.5"),
    "schedule.power_t": (_at_least(0), "an exponent >= 0, e.g. 0.5 (scikit-learn's power_t)"),
    "schedule.factor": (_at_least(0, strict=True), "a factor > 0, e.g. 5 for schedule=adaptive"),
    "schedule.total_iters": (_whole(0), "a whole number of epochs >= 0"),
    "schedule.T_max": (_whole(1), "a whole number of epochs >= 1, e.g. ${trainer.max_epochs}"),
    "schedule.eta_min": (_at_least(0), "a learning rate >= 0"),
    "schedule.min_lr": (_at_least(0), "a learning rate >= 0, e.g. 1e-6"),
    "optim.eps": (_at_least(0), "a small number >= 0, e.g. 1e-8 (scikit-learn's epsilon)"),
    "optim.tol": (_at_least(0), "a tolerance >= 0, e.g. 1e-4"),
    "optim.max_iter": (_whole(1), "a whole number of iterations >= 1, e.g. 200"),
    "optim.max_fun": (_whole(1), "a whole number of loss evaluations >= 1, e.g. 15000"),
    "optim.history_size": (_whole(1), "a whole number of past steps >= 1, e.g. 10"),
    "optim.weight_decay": (_at_least(0), "a decay >= 0 (or use regularization.alpha)"),
    "optim.alpha": (_at_least(0), "a smoothing constant >= 0, e.g. 0.99"),
    "optim.tolerance_grad": (_at_least(0), "a tolerance >= 0, e.g. 1e-7"),
    "optim.tolerance_change": (_at_least(0), "a tolerance >= 0, e.g. 1e-9"),
    "optim.line_search_fn": (lambda v: v in (None, "strong_wolfe"), "strong_wolfe, or null for none"),
    "model.bias_init": (lambda v: v in ("glorot", "zeros"), "glorot (scikit-learn) or zeros (Keras)"),
    "model.init": (lambda v: v in ("sklearn", "torch"), "sklearn (numpy's RandomState(seed), as scikit-learn's random_state) or torch (torch's generators)"),
    "data.split_seed": (_seed, "a whole number from 0 to 2**32 - 1, e.g. 0"),
    "data.permutation_seed": (_seed, "a whole number from 0 to 2**32 - 1, e.g. 42"),
    "data.generator.random_state": (_seed, "a whole number from 0 to 2**32 - 1, e.g. 0"),
    "data.generator.n_samples": (lambda v: isinstance(v, list) or _whole(2)(v), "a whole number of rows >= 2, e.g. 300"),
    "data.generator.noise": (_at_least(0), "a noise level >= 0, e.g. 0.25"),
    "data.generator.factor": (lambda v: _is_number(v) and 0 < v < 1, "a radius ratio in (0, 1), e.g. 0.5"),
    "data.test_size": (lambda v: _is_number(v) and 0 < v < 1, "a fraction between 0 and 1, e.g. 0.25"),
}
CHECKED_ELSEWHERE = {  # key or prefix -> the component that checks it
    "stopping.": "nnexp.training.stopping.StoppingRule",
    "trainer.": "Lightning's Trainer (nnexp.fit.build_trainer)",
    "data.task": "nnexp.data.bundle.infer_task",
    "data.validation_fraction": "nnexp.data.bundle.check_validation_fraction",
    "data.limit_": "nnexp.data.images.stratified_subset",
    "data.generator.": "the generator itself (nnexp.data.sources.GeneratedSource)",
    "trial": "the Optuna sweeper, which sets it",
}
REQUIRED_GROUPS = ("data", "model", "optim", "schedule", "regularization", "stopping", "trainer")
NOT_NULL = {  # keys that a config may leave out, but not set to null
    "optim.lr": "a learning rate > 0, e.g. 0.001",
    "regularization.alpha": "the L2 penalty, e.g. 0.0001; 0 turns it off",
    "regularization.l1": "the L1 penalty; 0 turns it off",
    "model.hidden_sizes": "a list of positive whole numbers, e.g. [100] or [10,10]; [] for no hidden layer",
    "model.activation": "",  # its options, from nnexp.models.activations
    "model.dropout": "a drop probability in [0, 1); 0 for none",
}
CHECKED_HERE = ("mode", "seed", "batch_size", "cv", "threads", "optim.betas", "optim.lr", "optim.momentum",
                "regularization.alpha", "regularization.l1", "model.hidden_sizes", "model.activation", "model.dropout")


def rule_of(key: str) -> str | None:
    """Where a setting's values are checked (None: nowhere, which tests/test_bad_value_table.py refuses)."""
    if key in RULES or key in CHECKED_HERE:
        return "nnexp.config"
    if key in switch_keys():
        return "nnexp.config.check_types (true or false)"
    return next((who for prefix, who in CHECKED_ELSEWHERE.items() if key == prefix or key.startswith(prefix)), None)


def check_rules(settings: dict) -> None:
    """Each setting in RULES that is set must pass its rule."""
    for key, (allowed, text) in RULES.items():
        value = setting(settings, key)
        if value is not None and not allowed(value):
            raise ConfigError(key, value, text)


def check_config(cfg: DictConfig) -> None:
    """Raise ConfigError naming the first key whose value is not allowed."""
    for group in REQUIRED_GROUPS:  # ~regularization removes a group every run builds from
        if group not in cfg:
            raise NnexpError(f"~{group} is not allowed: every run is built from a {group} option; choose one instead "
                             f"({group}=...; `nnexp --help` lists them)")
    if cfg.get("mode", "train") not in MODES:
        raise ConfigError("mode", cfg.mode, f"one of {', '.join(MODES)}")
    settings = _resolved(cfg)
    found = non_finite_setting(settings)
    if found:  # NaN passes every comparison, and inf overflows silently: neither is a setting
        raise ConfigError(found[0], found[1], "a finite number")
    check_keys(settings, lambda: OmegaConf.to_container(cfg, resolve=False))
    check_path_names({"task_name": cfg.get("task_name")}, explicit_hydra_keys())
    # Switches such as quiet, plots and fail_fast do not change what a job computes, so the job's
    # settings leave them out; they are checked all the same (the string "flase" is truthy).
    check_types({**settings, **{key: cfg.get(key) for key in switch_keys() if "." not in key and key not in settings}})
    check_rules(settings)
    betas = _get(cfg, "optim.betas")
    if betas is not None and not (OmegaConf.is_list(betas) and len(betas) == 2
                                  and all(_is_number(b) and 0 <= b < 1 for b in betas)):
        shown = OmegaConf.to_object(betas) if OmegaConf.is_config(betas) else betas
        raise ConfigError("optim.betas", shown, "two numbers in [0, 1), e.g. [0.9,0.999]")
    _check_non_negative(cfg, "regularization.alpha", "the L2 penalty; 0 turns it off")
    _check_non_negative(cfg, "regularization.l1", "the L1 penalty; 0 turns it off")
    _check_non_negative(cfg, "optim.momentum", "0 for plain SGD, e.g. 0.9")
    momentum = _get(cfg, "optim.momentum")
    if _is_number(momentum) and momentum > 1:
        raise ConfigError("optim.momentum", momentum, "a momentum in [0, 1], e.g. 0.9 (scikit-learn's range)")

    for key in NOT_NULL:  # null where a value must be: found here, not as a TypeError deep inside the run
        node, _, leaf = key.rpartition(".")
        parent = OmegaConf.select(cfg, node, default=None)
        if OmegaConf.is_dict(parent) and leaf in parent and parent[leaf] is None:
            if key == "model.activation":
                from nnexp.models.activations import ACTIVATIONS

                raise ConfigError(key, None, f"one of {', '.join(ACTIVATIONS)}")
            raise ConfigError(key, None, NOT_NULL[key])
    lr = _get(cfg, "optim.lr")
    if lr is not None and (not _is_number(lr) or lr <= 0):
        raise ConfigError("optim.lr", lr, "a learning rate > 0, e.g. 0.001")

    hidden = _get(cfg, "model.hidden_sizes")
    if hidden is not None:
        if not OmegaConf.is_list(hidden) or not all(
            isinstance(size, int) and not isinstance(size, bool) and size > 0 for size in hidden
        ):
            raise ConfigError(
                "model.hidden_sizes", OmegaConf.to_object(hidden) if OmegaConf.is_config(hidden) else hidden,
                "a list of positive whole numbers, e.g. [100] or [10,10]; [] for no hidden layer",
            )
    activation = _get(cfg, "model.activation")
    if activation is not None:
        from nnexp.models.activations import ACTIVATIONS

        if activation not in ACTIVATIONS:
            raise ConfigError("model.activation", activation, f"one of {', '.join(ACTIVATIONS)}")
    dropout = _get(cfg, "model.dropout")
    if dropout is not None and (not _is_number(dropout) or not 0 <= dropout < 1):
        raise ConfigError("model.dropout", dropout, "a drop probability in [0, 1), e.g. 0.2")

    batch_size = cfg.get("batch_size")
    if not (batch_size in BATCH_SIZE_WORDS or (isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size >= 1)):
        raise ConfigError("batch_size", batch_size, "auto, full, or a whole number >= 1 (1 is online SGD)")

    epochs = _get(cfg, "trainer.max_epochs")
    if epochs is not None and (not isinstance(epochs, int) or epochs < 1):
        raise ConfigError("trainer.max_epochs", epochs, "a whole number of epochs >= 1")
    cv = cfg.get("cv", 1)
    if not isinstance(cv, int) or isinstance(cv, bool) or cv < 1:
        raise ConfigError("cv", cv, "a whole number of folds >= 2, or 1 for no cross-validation")
    if not isinstance(cfg.get("seed"), int):
        raise ConfigError("seed", cfg.get("seed"), "a whole number, e.g. seed=0")
    threads = cfg.get("threads", "auto")
    if not (threads is None or threads == "auto" or (isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1)):
        raise ConfigError("threads", threads, "auto, a whole number of threads >= 1, or null for torch's default")
    _check_solver_combination(cfg)
    from nnexp.pairings import check_pairing

    check_pairing(cfg)  # optimiser x regulariser x stopping x model: the rule table in nnexp/pairings.py


def _resolved(cfg: DictConfig) -> dict:
    """The job's resolved settings (``nnexp.store.resolved_settings``); a ``${...}`` that cannot
    resolve is a ConfigError naming its key (raised in the task function, Hydra adds a line of its own)."""
    from omegaconf.errors import InterpolationResolutionError

    from nnexp.store import resolved_settings

    try:
        return resolved_settings(cfg)
    except InterpolationResolutionError as error:
        key = str(getattr(error, "full_key", "") or "") or "config"
        raw = OmegaConf.to_container(cfg, resolve=False)
        for part in re.findall(r"[^.\[\]]+", key):  # optim._args_[0]: a dict's key, then a list's index
            raw = raw.get(part) if isinstance(raw, dict) else raw[int(part)] if isinstance(raw, list) else raw
        reason = (getattr(error, "msg", None) or str(error)).splitlines()[0]
        raise ConfigError(key, raw, f"an interpolation that resolves ({reason}); name a key or resolver that exists, "
                                    "e.g. ${trainer.max_epochs} or ${oc.env:HOME}, or give the value itself") from None


def explicit_hydra_keys() -> set[str]:
    """The ``hydra.*`` keys the user set on the command line (none outside a Hydra run)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return set()
    return {override.split("=", 1)[0].lstrip("+~") for override in HydraConfig.get().overrides.hydra}


LBFGS_TARGET = "nnexp.training.lbfgs.LBFGS"
ADAPTIVE_TARGET = "nnexp.training.schedules.AdaptiveRate"
CONSTANT_TARGET = "torch.optim.lr_scheduler.ConstantLR"


def _check_solver_combination(cfg: DictConfig) -> None:
    """Schedules that scikit-learn would silently ignore are refused, with the setting that works
    (L-BFGS with early stopping is a pairing: ``nnexp.pairings`` decides it)."""
    schedule = _get(cfg, "schedule._target_")
    if _get(cfg, "optim._target_") == LBFGS_TARGET and schedule not in (None, CONSTANT_TARGET):
        from nnexp.config_files import group_options

        chosen = next((name for name, node in group_options("schedule") if node.get("_target_") == schedule), schedule)  # not its class
        raise ConfigError("schedule", chosen, "schedule=constant with optim=lbfgs (L-BFGS has no learning rate)")
    if schedule == ADAPTIVE_TARGET and _get(cfg, "stopping.monitor") is None:
        raise ConfigError(
            "schedule", "adaptive",
            "a stopping rule with schedule=adaptive (stopping=convergence or early_stopping): "
            "it lowers the rate when that rule sees no improvement",
        )


def resolve_batch_size(batch_size: int | str, n_train: int, full_batch_only: bool) -> int:
    """``auto`` is ``min(200, n_train)`` as in scikit-learn; ``full`` is the whole training split."""
    if full_batch_only:
        if batch_size not in BATCH_SIZE_WORDS and batch_size < n_train:
            raise ConfigError("batch_size", batch_size, "full for L-BFGS, which steps on the whole training set")
        return n_train
    if batch_size == "auto":
        return min(200, n_train)
    if batch_size == "full":
        return n_train
    return min(int(batch_size), n_train)


def is_training_config(cfg: DictConfig) -> bool:
    """Whether a (job) config is one of nnexp's runs: Hydra apps of others may use its launchers."""
    return all(OmegaConf.is_dict(cfg.get(group)) for group in ("data", "model", "optim", "paths"))
