"""scikit-learn's MLP parameter names on nnexp's command line.

``nnexp solver=lbfgs hidden_layer_sizes=[10,10,10] alpha=1e-3 random_state=0`` is rewritten,
before Hydra composes anything, into nnexp's own keys (``optim=lbfgs model.hidden_sizes=[10,10,10]
regularization.alpha=1e-3 seed=0``), with scikit-learn's meaning, which nnexp's solvers follow.
The run's config, its ``.hydra`` record and every printed command then use nnexp's keys. Sweeps
work the same way (``-m alpha=1e-3,1e-2``). This module imports nothing heavy: it runs before torch.
"""

from __future__ import annotations

import functools

import difflib
from importlib import resources

from nnexp.errors import ConfigError, NnexpError

# scikit-learn's name -> nnexp's key, where the value carries over as it is.
RENAMED = {
    "hidden_layer_sizes": "model.hidden_sizes",
    "activation": "model.activation",
    "solver": "optim",
    "alpha": "regularization.alpha",
    "batch_size": "batch_size",
    "learning_rate": "schedule",
    "learning_rate_init": "optim.lr",
    "power_t": "schedule.power_t",
    "random_state": "seed",
    "momentum": "optim.momentum",
    "nesterovs_momentum": "optim.nesterov",
    "validation_fraction": "stopping.validation_fraction",
    "beta_1": "optim.betas.0",
    "beta_2": "optim.betas.1",
    "epsilon": "optim.eps",
    "n_iter_no_change": "stopping.patience",
    "max_fun": "optim.max_fun",
}
# Names whose nnexp key depends on the solver: L-BFGS counts iterations and takes tol as its
# gradient tolerance; SGD and Adam count epochs and take tol in their stopping rule.
BY_SOLVER = {
    "max_iter": ("optim.max_iter", "trainer.max_epochs"),
    "tol": ("optim.tol", "stopping.tol"),
}
# scikit-learn parameters nnexp has no key for, with what to do instead.
NOT_AVAILABLE = {
    "shuffle": "nnexp always reshuffles minibatches each epoch (scikit-learn's shuffle=True)",
    "warm_start": "each nnexp run starts from freshly seeded weights; resume a sweep with resume=DIR",
    "verbose": "nnexp prints a progress bar and tables; quiet=true leaves out the bar and the layer table",
    "loss": "the loss follows the data's task (data.task): cross-entropy or half squared error",
}
BOOLEAN_TRUE, BOOLEAN_FALSE = ("true", "True", "1"), ("false", "False", "0")


def join_split_values(argv: list[str]) -> list[str]:
    """Rejoin a list value that the shell split at its spaces (``hidden_layer_sizes=[10, 10]``). A
    bracket that no later piece closes is left as it is, for Hydra to name that override alone: the
    next override or flag is never swallowed into it."""
    joined: list[str] = []
    depth, opened_at = 0, 0
    for index, arg in enumerate(argv):
        continues = depth > 0 and "=" not in arg and not arg.startswith("-")
        if continues:
            joined[-1] += arg
        else:
            if depth > 0:  # the open bracket was never closed: keep its pieces apart
                joined[len(joined) - 1:] = argv[opened_at:index]
            joined.append(arg)
            depth, opened_at = 0, index
        depth = max(depth + arg.count("[") - arg.count("]"), 0)
    if depth > 0:
        joined[len(joined) - 1:] = argv[opened_at:]
    return joined


@functools.cache
def root_keys() -> frozenset[str]:
    """The keys nnexp's root config knows: its own, its groups', and Hydra's; read once per
    process (nnexp's packaged configs do not change while it runs: 7 ms a call saved in a kernel)."""
    import yaml

    root = resources.files("nnexp.configs")
    train = yaml.safe_load(root.joinpath("train.yaml").read_text())
    groups = {item.name for item in root.iterdir() if item.is_dir() and not item.name.startswith("_")}
    return frozenset(set(train) - {"defaults"} | groups | {"hydra"})


def experiment_solver(name: str) -> str | None:
    """The optimiser an experiment file selects (``override /optim: lbfgs``), if it selects one."""
    try:
        text = resources.files("nnexp.configs").joinpath("experiment", f"{name}.yaml").read_text()
    except (FileNotFoundError, OSError):
        return None
    for line in text.splitlines():
        if "override /optim:" in line:
            return line.split(":", 1)[1].strip()
    return None


def solvers_named(pairs: list[tuple[str, str, str]]) -> set[str]:
    """The optimisers a command line selects (a sweep may select several); adam when it names none."""
    solvers: set[str] = set()
    for _, key, value in pairs:
        if key in ("optim", "solver"):
            solvers |= set(value.split(","))
        elif key == "experiment" and experiment_solver(value):
            solvers.add(experiment_solver(value))
    return solvers or {"adam"}


def translate(argv: list[str], check_keys: bool = True) -> tuple[list[str], list[str]]:
    """(nnexp's command line, the renamings made) for a command line that may use scikit-learn's
    names. A name nnexp has no key for, or a root key it does not know (with or without ``+``),
    is an NnexpError with the nearest names it does know. ``check_keys=False`` leaves unknown
    root keys to Hydra (a user config dir may add its own)."""
    argv = join_split_values(argv)
    pairs = []  # (prefix, key, value) of each override; None for flags and other arguments
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            pairs.append(None)
            continue
        key, value = arg.split("=", 1)
        prefix = key[: len(key) - len(key.lstrip("+~"))]
        pairs.append((prefix, key[len(prefix):], value))
    overrides = [pair for pair in pairs if pair is not None]
    refuse_validation_fraction_without_early_stopping(overrides)
    solvers = solvers_named(overrides)
    known = root_keys() if check_keys else set()
    result, notes = [], []
    for arg, pair in zip(argv, pairs):
        if pair is None:
            result.append(arg)
            continue
        prefix, key, value = pair
        new_key, new_value = nnexp_key(key, value, solvers, known, prefix)
        if (new_key, new_value) != (key, value):
            notes.append(f"{key}={value} -> {new_key}={new_value}")
            prefix = prefix.replace("+", "")  # nnexp's key exists: no need to add it
        result.append(f"{prefix}{new_key}={new_value}")
    return result, notes


def refuse_validation_fraction_without_early_stopping(overrides: list[tuple[str, str, str]]) -> None:
    """scikit-learn holds out ``validation_fraction`` only with ``early_stopping=True``; otherwise the
    name has no effect there, while nnexp's key would hold rows out: a silent change of result."""
    given = [value for _, key, value in overrides if key == "validation_fraction"]
    early = any((key == "early_stopping" and any(v in BOOLEAN_TRUE for v in value.split(",")))
                or (key == "stopping" and "early_stopping" in value.split(",")) for _, key, value in overrides)
    if given and not early:
        raise NnexpError(f"validation_fraction={given[0]}: scikit-learn uses validation_fraction only with "
                         "early_stopping=True (without it the name has no effect); add early_stopping=true, or hold "
                         "rows out in nnexp's own terms with data.validation_fraction (a validation split scored each epoch)")


def nnexp_key(key: str, value: str, solvers: set[str], known: set[str], prefix: str) -> tuple[str, str]:
    """nnexp's (key, value) for one override."""
    if key in RENAMED:
        return RENAMED[key], value
    if key == "early_stopping":
        stopping = []
        for option in value.split(","):
            if option not in BOOLEAN_TRUE + BOOLEAN_FALSE:
                raise ConfigError("early_stopping", option, "true or false (scikit-learn's early_stopping)")
            stopping.append("early_stopping" if option in BOOLEAN_TRUE else "convergence")
        return "stopping", ",".join(stopping)
    if key in BY_SOLVER:
        lbfgs_key, stochastic_key = BY_SOLVER[key]
        lbfgs = {s for s in solvers if s.startswith("lbfgs")}
        if lbfgs and lbfgs != solvers:
            raise ConfigError(
                key, value,
                f"one solver per command: it means {lbfgs_key} for lbfgs and {stochastic_key} for "
                f"{', '.join(sorted(solvers - lbfgs))}; set those keys instead",
            )
        return (lbfgs_key if lbfgs else stochastic_key), value
    if key in NOT_AVAILABLE:
        raise NnexpError(f"{key}={value}: scikit-learn's {key} has no nnexp key; {NOT_AVAILABLE[key]}")
    root = key.split(".")[0].split("/")[0]  # hydra/job_logging=disabled: a group under hydra
    if known and root not in known:
        raise NnexpError(
            f"{prefix}{key}={value}: nnexp has no key {root}{did_you_mean(root, known)}; "
            "`nnexp --help` lists the keys and groups (+ adds keys only inside a config node, e.g. +trainer.deterministic=true)"
        )
    return key, value


def did_you_mean(name: str, known: set[str]) -> str:
    """`` (did you mean X?)`` for the nearest known key or scikit-learn name, or nothing."""
    candidates = sorted(known | set(RENAMED) | set(BY_SOLVER) | {"early_stopping"})
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.7)
    return f" (did you mean {close[0]}?)" if close else ""
