"""A run's last stage: ``record(plan, result)`` writes what a producer trained into the run dir."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from nnexp import console as show
from nnexp.artifacts import save_model
from nnexp.handoff import FitResult
from nnexp.metrics import RunRecord, trained_record, write_record
from nnexp.plan import Plan
from nnexp.results import HISTORY_FILE, METRICS_FILE, MODEL_SUMMARY_FILE, write_history, write_text_atomic


def record(plan: Plan, result: FitResult) -> RunRecord:
    """Write the run dir's layer table, history, model and (last, marking it finished)
    metrics.json; the caller shows the results (``nnexp.runner.show_results``)."""
    bundle, cfg = plan.bundle, plan.cfg
    run = trained_record(result.metrics, plan.key, bundle.name, bundle.task, cfg.seed, bundle.fingerprint)
    write_text_atomic(plan.output_dir / MODEL_SUMMARY_FILE, show.layer_text(result.metrics.layers, result.metrics.params))
    write_history(plan.output_dir / HISTORY_FILE, result.history)
    save_model(plan.output_dir, result.network, cfg, bundle, result.data)
    write_record(plan.output_dir / METRICS_FILE, run)
    return run


def report(console, cfg: DictConfig, run: RunRecord) -> None:
    """The notes a user should act on, then the final table: the output ends with the scores."""
    for note in notes(cfg, run):
        console.print(note)
    console.print(show.results_table(run))
    console.print(show.results_caption(run))


def notes(cfg: DictConfig, run: RunRecord) -> list[str]:
    """What a user should act on after this run (rich markup): divergence, or a budget that
    stopped training before it settled."""
    fit = run.fit
    if run.status == "diverged":
        return [
            "[bold red]diverged[/]: the training loss became NaN, infinite, or far above the trivial predictor's (stopping.divergence_factor); "
            f"lower optim.lr (now {OmegaConf.select(cfg, 'optim.lr')}) or raise regularization.alpha"
        ]
    if fit.stop_reason in ("max_iter", "max_fun"):  # scikit-learn's ConvergenceWarning for lbfgs
        key = f"optim.{fit.stop_reason}"
        return [
            f"[yellow]note[/]: L-BFGS used its {key}={OmegaConf.select(cfg, key)} budget before the gradient "
            f"fell to optim.tol={OmegaConf.select(cfg, 'optim.tol')}; raise {key} if the loss was still falling"
        ]
    if "max_epochs" in fit.stop_reason and OmegaConf.select(cfg, "stopping.monitor"):
        return [
            f"[yellow]note[/]: stopped at trainer.max_epochs={fit.max_epochs} before "
            f"{cfg.stopping.monitor} settled; raise trainer.max_epochs or optim.lr if the scores are still improving"
        ]
    return []


def log_lines(cfg: DictConfig, run: RunRecord, output_dir) -> list[str]:
    """What the console shows of a finished run, as plain lines for the run's log file."""
    from rich.text import Text

    lines = [f"run dir: {output_dir}"] + [Text.from_markup(note).plain for note in notes(cfg, run)]
    return lines + show.results_lines(run) + [Text.from_markup(show.results_caption(run)).plain]
