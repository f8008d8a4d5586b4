"""The shared runner: one config in, one trained and tested model (or k CV fits) and its run dir out."""

from __future__ import annotations

import math
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from nnexp import console as show
from nnexp.artifacts import save_model
from nnexp.batched import registry
from nnexp.config import check_config, resolve_batch_size
from nnexp.data.bundle import fit_validation_fraction
from nnexp.data.loading import load_data
from nnexp.data.splits import make_fit_data
from nnexp.factory import instantiate
from nnexp.fit import Factories, build_loggers, fit_and_score, prepare_network, quiet_lightning
from nnexp.results import CONFIG_FILE, HISTORY_FILE, METRICS_FILE, config_yaml, write_history, write_json, write_text_atomic
from nnexp.sweeps.cv import cross_validate
from nnexp.sweeps.jobs import job_key
from nnexp.training.hardware import auto_threads, freeze_imports, step_work, torch_threads, tune_malloc

SUMMARY_FILE = "model_summary.txt"


def objective_of(metrics: dict) -> float:
    """What a sweep maximises: the validation (or cross-validation) score when there is one, else
    the training score; NaN for a diverged run. Test data never selects a model."""
    if metrics.get("status") != "ok":
        return float("nan")
    return float(metrics.get("val_score", metrics.get("train_score", float("nan"))))


def run(cfg: DictConfig, console=None, plots_in_background: bool = False) -> float:
    """Train and test one configuration (or cross-validate it when ``cv > 1``), write its run dir,
    and return the sweep objective. With ``plots`` on, the run's figures are drawn here, or in a
    detached process when ``plots_in_background`` (the CLI: control returns at once)."""
    check_config(cfg)
    quiet_lightning()
    tune_malloc()
    freeze_imports()
    console = console or show.make_console()
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(output_dir / CONFIG_FILE, config_yaml(cfg))
    if not cfg.quiet and cfg.mode == "train":
        console.print(show.config_tree(cfg))
    bundle = load_data(cfg.data)
    with torch_threads(run_threads(cfg, bundle)):
        return _run(cfg, bundle, console, output_dir, plots_in_background)


def run_threads(cfg: DictConfig, bundle) -> int | None:
    """The run's intra-op threads (``threads``; ``auto`` counts an MLP's step, see ``auto_threads``)."""
    setting = cfg.get("threads", "auto")
    if setting != "auto" or cfg.model.get("_target_") != "nnexp.models.mlp.MLP":
        return auto_threads(setting, None)
    rows = resolve_batch_size(cfg.batch_size, len(bundle.y_train), full_batch_only=False)
    return auto_threads(setting, step_work(math.prod(bundle.input_shape), cfg.model.hidden_sizes, bundle.n_outputs, rows))


def _run(cfg: DictConfig, bundle, console, output_dir: Path, plots_in_background: bool) -> float:
    key = job_key(cfg)
    # A batched sweep may have trained this job already, together with others.
    precomputed = registry.take(key) if registry.pending() and cfg.mode == "train" else None
    if precomputed is None or not cfg.quiet:
        stopping = instantiate(cfg.stopping)
        penalty = instantiate(cfg.regularization)
        factories = Factories.from_config(cfg)
    data = None  # the whole-training-split fit data, made once when needed
    if cfg.mode != "train" or not cfg.quiet:
        data = make_fit_data(bundle, validation_fraction=fit_validation_fraction(bundle, stopping), seed=cfg.seed)
        net = prepare_network(cfg, factories, bundle, data)
        console.print(show.layer_table(net.layers, net.params))
    if cfg.mode != "train":
        write_text_atomic(output_dir / SUMMARY_FILE, show.layer_text(net.layers, net.params))
        if cfg.mode == "validate":
            console.print(f"[green]config OK[/]: {bundle.name}, {bundle.task}, {len(data.train)} training rows, {net.params:,} parameters")
        return float("nan")

    def progress():
        if cfg.quiet:
            return None
        from nnexp.training.callbacks import EpochProgress

        return EpochProgress(console, "r2" if bundle.task == "regression" else "accuracy")

    if precomputed is not None:
        result = precomputed
    elif int(cfg.cv) > 1:
        result = cross_validate(cfg, factories, bundle, stopping, penalty, progress)
    else:
        data = data or make_fit_data(bundle, validation_fraction=fit_validation_fraction(bundle, stopping), seed=cfg.seed)
        result = fit_and_score(cfg, factories, bundle, data, stopping, penalty, progress(), build_loggers(cfg),
                               history_file=output_dir / HISTORY_FILE)
    metrics = {
        "data": bundle.name,
        "task": bundle.task,
        "score_name": "r2" if bundle.task == "regression" else "accuracy",
        "seed": cfg.seed,
        "job_key": key,
        **result.metrics,
    }
    metrics["objective"] = objective_of(metrics)
    write_text_atomic(output_dir / SUMMARY_FILE, show.layer_text(metrics["layers"], metrics["params"]))
    write_history(output_dir / HISTORY_FILE, result.history)
    save_model(output_dir, result.network, cfg, bundle, result.data)
    write_json(output_dir / METRICS_FILE, metrics)
    if not console.quiet:
        report(console, cfg, metrics, output_dir)
    if cfg.get("plots", True):
        if plots_in_background:
            from nnexp.plots.background import start_drawing

            start_drawing(output_dir, "nnexp.plots.run_plots", "plots.log")
            console.print(f"[dim]plots: drawing in the background into {output_dir}; nnexp-plot {output_dir} waits for them")
        else:
            from nnexp.plots.run_plots import write_run_plots

            for path in write_run_plots(output_dir):
                console.print(f"[dim]plot: {path}")
    return metrics["objective"]


def report(console, cfg: DictConfig, metrics: dict, output_dir: Path) -> None:
    """The final table and the notes a user should act on."""
    console.print(show.results_table(metrics))
    console.print(show.results_caption(metrics))
    if metrics["status"] == "diverged":
        console.print(
            "[bold red]diverged[/]: the training loss became NaN or infinite; "
            f"lower optim.lr (now {OmegaConf.select(cfg, 'optim.lr')}) or raise regularization.alpha"
        )
    elif metrics["stop_reason"] in ("max_iter", "max_fun"):  # scikit-learn's ConvergenceWarning for lbfgs
        key = f"optim.{metrics['stop_reason']}"
        console.print(
            f"[yellow]note[/]: L-BFGS used its {key}={OmegaConf.select(cfg, key)} budget before the gradient "
            f"fell to optim.tol={OmegaConf.select(cfg, 'optim.tol')}; raise {key} if the loss was still falling"
        )
    elif "max_epochs" in metrics["stop_reason"] and OmegaConf.select(cfg, "stopping.monitor"):
        console.print(
            f"[yellow]note[/]: stopped at trainer.max_epochs={metrics['max_epochs']} before "
            f"{cfg.stopping.monitor} settled; raise trainer.max_epochs or optim.lr if the scores are still improving"
        )
    console.print(f"[dim]run dir: {output_dir}")

