"""Optuna 4.9 and 5: the sweeper preset states its sampler's options, so a seeded study samples the
same trials under both (CI runs this on the oldest supported Optuna and on the newest)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest
from omegaconf import OmegaConf

optuna = pytest.importorskip("optuna")
pytestmark = pytest.mark.hydra  # CI's oldest-releases run (Optuna 4.9) runs the Hydra tests

ROOT = Path(__file__).resolve().parents[1]
PRESET = ROOT / "configs" / "hydra" / "sweeper" / "optuna.yaml"

# The first 14 trials of a seeded study of the preset's sampler on the objective below, recorded
# under Optuna 5.1 and identical under 4.9 (4.8 and older differ from trial 10, TPE's first).
RECORDED = [
    (0.01821502, 0.00068408199, "[50]"), (0.012542721, 0.0051523192, "[50, 50]"),
    (0.038555781, 0.010664996, "[50, 50]"), (0.0039144183, 0.00033315458, "[50]"),
    (7.7183372e-05, 0.0004840554, "[10]"), (3.180091e-05, 0.0010011955, "[10]"),
    (1.1256122e-05, 0.072932318, "[100]"), (9.4673789e-05, 0.018379878, "[10]"),
    (0.00025215455, 0.00012681273, "[100]"), (0.046640486, 0.002980432, "[100]"),
    (1.7419868, 0.094218773, "[50, 50]"), (0.68501964, 0.0058439297, "[50, 50]"),
    (0.12534984, 0.012560554, "[50, 50]"), (0.0025904816, 0.0026699579, "[50, 50]"),
]


def preset_sampler() -> dict:
    return OmegaConf.to_container(OmegaConf.load(PRESET).sampler)


def test_the_preset_states_the_options_whose_defaults_optuna_5_changed():
    sampler = preset_sampler()
    assert sampler["multivariate"] is False and sampler["constant_liar"] is False
    assert {"seed", "n_startup_trials", "n_ei_candidates"} <= set(sampler)


def test_a_seeded_study_samples_the_recorded_trials():
    from hydra.utils import instantiate
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    space = {"alpha": FloatDistribution(1e-5, 10, log=True), "lr": FloatDistribution(1e-4, 1e-1, log=True),
             "hidden_sizes": CategoricalDistribution(["[10]", "[50]", "[100]", "[50, 50]"])}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize")
    sampled = []
    for number in range(len(RECORDED)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna's experimental-feature warnings
            study.sampler = instantiate({**preset_sampler(), "seed": 100 + number})
        trial = study.ask(space)
        p = trial.params
        study.tell(trial, -(math.log10(p["alpha"]) + 2) ** 2 - (math.log10(p["lr"]) + 2) ** 2 + len(p["hidden_sizes"]) / 10)
        sampled.append((float(f"{p['alpha']:.8g}"), float(f"{p['lr']:.8g}"), p["hidden_sizes"]))
    assert sampled == RECORDED


def test_the_study_report_names_its_importance_method(tmp_path):
    from rich.console import Console

    from nnexp.studies.summary import IMPORTANCE_METHOD, importance_evaluator, summarise_study

    assert IMPORTANCE_METHOD == "PED-ANOVA" and type(importance_evaluator()).__name__ == "PedAnovaImportanceEvaluator"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda trial: trial.suggest_float("a", 0, 1) - 0.1 * trial.suggest_float("b", 0, 1), n_trials=30)
    console = Console(record=True, width=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summarise_study(study, tmp_path, console=console)
    assert f"study_param_importances.png (parameter importance by {IMPORTANCE_METHOD})" in console.export_text()
