"""scikit-learn's MLP parameter names on the command line (nnexp.vocabulary)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from nnexp.compat import hydra_version_base
from nnexp.errors import NnexpError
from nnexp.vocabulary import translate


def composed(overrides: list[str]) -> dict:
    GlobalHydra.instance().clear()
    with initialize_config_module("nnexp.configs", **hydra_version_base()):
        cfg = compose("train", overrides=overrides)
    return OmegaConf.to_container(cfg, resolve=False)


def test_the_lectures_command_means_nnexps_keys():
    sklearn = ["solver=lbfgs", "hidden_layer_sizes=[10,10,10]", "activation=tanh", "alpha=1e-3", "random_state=0",
               "max_iter=500", "tol=1e-6", "max_fun=20000"]
    argv, renamed = translate(sklearn)
    assert argv == ["optim=lbfgs", "model.hidden_sizes=[10,10,10]", "model.activation=tanh", "regularization.alpha=1e-3",
                    "seed=0", "optim.max_iter=500", "optim.tol=1e-6", "optim.max_fun=20000"]
    assert len(renamed) == len(sklearn)
    cfg = composed(argv)
    assert cfg["optim"]["_target_"] == "nnexp.training.lbfgs.LBFGS" and cfg["optim"]["max_iter"] == 500
    assert cfg["model"]["hidden_sizes"] == [10, 10, 10] and cfg["seed"] == 0


def test_stochastic_solvers_take_epochs_and_their_stopping_rule():
    sklearn = ["solver=sgd", "learning_rate=invscaling", "learning_rate_init=0.01", "power_t=0.25", "momentum=0.8",
               "nesterovs_momentum=false", "batch_size=32", "max_iter=50", "tol=1e-3", "n_iter_no_change=5",
               "early_stopping=true", "validation_fraction=0.2"]
    cfg = composed(translate(sklearn)[0])
    assert cfg["optim"]["_target_"] == "nnexp.training.optimizers.SGD"
    assert (cfg["optim"]["lr"], cfg["optim"]["momentum"], cfg["optim"]["nesterov"]) == (0.01, 0.8, False)
    assert cfg["schedule"]["_target_"] == "nnexp.training.schedules.InverseScaling" and cfg["schedule"]["power_t"] == 0.25
    assert cfg["trainer"]["max_epochs"] == 50 and cfg["batch_size"] == 32
    assert cfg["stopping"]["monitor"] == "val_score"
    assert (cfg["stopping"]["tol"], cfg["stopping"]["patience"], cfg["stopping"]["validation_fraction"]) == (1e-3, 5, 0.2)
    adam = composed(translate(["beta_1=0.8", "beta_2=0.99", "epsilon=1e-7"])[0])
    assert adam["optim"]["betas"] == [0.8, 0.99] and adam["optim"]["eps"] == 1e-7


def test_an_experiments_solver_decides_what_max_iter_means():
    assert translate(["experiment=moons_lbfgs", "max_iter=50"])[0][1] == "optim.max_iter=50"
    assert translate(["experiment=digits_sgd", "max_iter=50"])[0][1] == "trainer.max_epochs=50"
    with pytest.raises(NnexpError, match="one solver per command"):
        translate(["-m", "solver=adam,lbfgs", "max_iter=50"])


def test_sweeps_rename_keys_and_keep_their_values():
    argv, _ = translate(["-m", "alpha=1e-3,1e-2", "hidden_layer_sizes=[10],[50]", "early_stopping=true,false", "seed=range(0,3)"])
    assert argv == ["-m", "regularization.alpha=1e-3,1e-2", "model.hidden_sizes=[10],[50]",
                    "stopping=early_stopping,convergence", "seed=range(0,3)"]


def test_spaces_inside_a_list_value_are_accepted():
    argv, _ = translate(["hidden_layer_sizes=[10,", "10,", "10]", "activation=relu"])
    assert argv == ["model.hidden_sizes=[10,10,10]", "model.activation=relu"]
    assert translate(["model.hidden_sizes=[5,", "5]"])[0] == ["model.hidden_sizes=[5,5]"]


def test_plus_reaches_scikit_learn_names_but_adds_no_unknown_root_key():
    assert translate(["+solver=lbfgs"])[0] == ["optim=lbfgs"]
    with pytest.raises(NnexpError, match="nnexp has no key solverr \\(did you mean solver\\?\\)"):
        translate(["solverr=lbfgs"])
    with pytest.raises(NnexpError, match="nnexp has no key foo"):
        translate(["+foo=1"])
    with pytest.raises(NnexpError, match="did you mean seed"):
        translate(["sed=1"])
    # + inside a config node is what adds a constructor argument: left to Hydra.
    assert translate(["+trainer.gradient_clip_val=1"])[0] == ["+trainer.gradient_clip_val=1"]
    assert translate(["hydra.sweep.dir=x", "data=iris", "--cfg", "job"])[0] == ["hydra.sweep.dir=x", "data=iris", "--cfg", "job"]
    # Hydra's own groups (hydra/job_logging=disabled, as Hydra's docs write it) are Hydra's keys.
    assert translate(["hydra/job_logging=disabled"])[0] == ["hydra/job_logging=disabled"]
    with pytest.raises(NnexpError, match="nnexp has no key hydro"):
        translate(["hydro/job_logging=disabled"])


@pytest.mark.parametrize("name", ["shuffle=false", "warm_start=true", "early_stopping=maybe"])
def test_scikit_learn_names_without_an_nnexp_key_say_so(name):
    with pytest.raises(NnexpError) as error:
        translate([name])
    assert name.split("=")[0] in str(error.value)


def test_validation_fraction_takes_effect_only_with_early_stopping_as_in_scikit_learn():
    """scikit-learn ignores validation_fraction without early_stopping=True; nnexp's key would hold
    rows out and change the result: refused in one line instead."""
    with pytest.raises(NnexpError, match=r"^validation_fraction=0.2: scikit-learn uses validation_fraction only with "
                                         r"early_stopping=True") as error:
        translate(["solver=adam", "validation_fraction=0.2"])
    assert "\n" not in str(error.value)
    for early in ("early_stopping=true", "stopping=early_stopping"):
        assert "stopping.validation_fraction=0.2" in translate([early, "validation_fraction=0.2"])[0]


def test_cli_answers_a_misspelt_key_in_one_line_with_exit_code_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "nnexp.cli", "hiden_layer_sizes=[5]"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: hiden_layer_sizes=[5]: nnexp has no key hiden_layer_sizes (did you mean hidden_layer_sizes?); "
        "`nnexp --help` lists the keys and groups (+ adds keys only inside a config node, e.g. +trainer.deterministic=true)"
    ]
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize("argv, joined", [
    (["hidden_layer_sizes=[10,", "10]", "seed=1"], ["hidden_layer_sizes=[10,10]", "seed=1"]),  # the shell split it at a space
    (["-m", "model.hidden_sizes=[10],[10,", "10]", "seed=1"], ["-m", "model.hidden_sizes=[10],[10,10]", "seed=1"]),
    (["optim.lr=[0.1", "quiet=true", "mode=validate"], ["optim.lr=[0.1", "quiet=true", "mode=validate"]),  # never closed
    (["alpha=[0.1,", "1", "--cfg", "job"], ["alpha=[0.1,", "1", "--cfg", "job"]),
])
def test_a_list_the_shell_split_is_rejoined_and_an_unclosed_bracket_swallows_nothing(argv, joined):
    from nnexp.vocabulary import join_split_values

    assert join_split_values(argv) == joined
