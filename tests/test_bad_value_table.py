"""Every setting a user edits, with every kind of bad value: one line naming the key, or a result.

The table is built from the configs themselves: each number, word and switch of the composed
config, with the options users pick most (optim=sgd, optim=lbfgs, stopping=early_stopping,
schedule=invscaling, model=cnn_small, data=moons), set to NaN, a negative number, zero and a word (and every other option's own keys).
Each case runs `nnexp ... mode=validate` in this process (every check, the data and the network,
the optimiser and the Trainer; no training). It must end with exit 0 (the value is allowed) or
exit 2 and one line on stderr that names the key: never a traceback.
"""

from __future__ import annotations

import sys

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from nnexp import cli
from nnexp.compat import hydra_version_base

BASES = {
    "default": [],
    "sgd": ["optim=sgd"],
    "lbfgs": ["optim=lbfgs"],
    "early_stopping": ["stopping=early_stopping"],
    "invscaling": ["optim=sgd", "schedule=invscaling"],
    "cnn": ["data=digits_images", "model=cnn_small"],
    "moons": ["data=moons"],
}
NEEDS_FILES = ("csv", "mnist", "fashion_mnist", "kmnist", "permuted_mnist")  # data options that need the user's files
BASES.update({  # every other option of the groups users edit, so that each of their keys gets rows
    f"{group}={option}": [*extra, f"{group}={option}"]
    for group, options, extra in (
        ("optim", ("adam_torch", "gd", "rmsprop", "sgd_torch", "lbfgs_torch"), []),
        ("schedule", ("step", "cosine", "adaptive", "constant"), ["optim=sgd", "stopping=convergence"]),
        ("regularization", ("l1", "none"), []),
        ("stopping", ("none",), []),
        ("model", ("linear", "logistic", "cnn"), ["data=digits_images"]),
        ("data", ("blobs", "circles", "wave", "wine", "digits", "diabetes", "iris"), []),
    )
    for option in options
    if option not in NEEDS_FILES
})
SKIPPED_ROOTS = ("paths", "logger", "callbacks", "hydra")  # where files go, and optional integrations
SKIPPED_KEYS = ("_target_", "_partial_", "name", "loader", "root", "path", "target", "drop", "delimiter",
                "encoding", "mode", "task_name", "layers", "blocks", "dataset")
BAD_NUMBERS = ["nan", "-1", "0", "abc"]  # inf takes nan's path (tests/test_errors.py has it)
BAD_WORDS = ["abc", "-1"]
BAD_SWITCHES = ["abc"]


def leaves(node, prefix: str = ""):
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key in SKIPPED_KEYS or path.split(".")[0] in SKIPPED_ROOTS:
            continue
        if isinstance(value, dict):
            yield from leaves(value, path)
        elif isinstance(value, list):
            yield path, "[1,-1]" if all(isinstance(v, (int, float)) for v in value) else None
        else:
            yield path, value


def cases() -> list:
    """Built at collection, before any fixture: Hydra's process-wide state is put back after."""
    import copy

    from hydra.core.plugins import Plugins
    from hydra.core.singleton import Singleton

    Plugins.instance()  # scanned first: Hydra 1.4 registers the plugins' configs once per process
    state = copy.deepcopy(Singleton.get_state())
    GlobalHydra.instance().clear()
    rows, seen = [], set()
    with initialize_config_module("nnexp.configs", **hydra_version_base()):
        for base, overrides in BASES.items():
            config = OmegaConf.to_container(compose("train", overrides=overrides), resolve=False)
            for key, value in leaves(config):
                if isinstance(value, bool):
                    bad = BAD_SWITCHES
                elif isinstance(value, (int, float)):
                    bad = BAD_NUMBERS
                elif isinstance(value, str) and not value.startswith("${"):
                    bad = BAD_WORDS
                elif value == "[1,-1]":
                    bad = ["[nan]", "abc"]
                else:
                    bad = BAD_WORDS  # null: any value may be set
                for text in bad:
                    if (key, text) not in seen:
                        seen.add((key, text))
                        rows.append(pytest.param(overrides, key, text, id=f"{base}:{key}={text}"))
    Singleton.set_state(state)
    return rows


CASES = cases()


@pytest.mark.parametrize("overrides, key, value", CASES)
def test_a_bad_value_is_one_line_naming_its_key_or_is_allowed(overrides, key, value, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    GlobalHydra.instance().clear()
    monkeypatch.setattr(sys, "argv", ["nnexp", *overrides, "mode=validate", "quiet=true", "plots=false",
                                      "logger=none", f"{key}={value}"])
    code = 0
    try:
        cli.main()
    except SystemExit as exit:
        code = exit.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    if code == 0:
        return  # allowed, and validate found nothing wrong with it
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert key.split(".")[-1] in lines[0] or key in lines[0], lines[0]


def test_the_table_covers_every_setting_of_the_common_options():
    keys = {case.values[1] for case in CASES}
    assert len(CASES) > 120 and {"regularization.alpha", "optim.momentum", "optim.max_fun", "stopping.patience",
                                 "data.generator.n_samples", "trainer.precision", "seed", "cv"} <= keys


def test_every_number_switch_and_choice_has_a_rule():
    """A new key that takes a number, a switch or a word must come with its rule (nnexp.config.RULES,
    a check of its own, or the component that checks it in CHECKED_ELSEWHERE)."""
    from nnexp.config import rule_of

    keys = {case.values[1] for case in CASES}
    assert not sorted(key for key in keys if rule_of(key) is None)
