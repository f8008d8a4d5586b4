"""A run's producer and its display: ``produce(plan) -> FitResult`` (one fit, or k cross-validation
fits), the plan's tables, ``mode=params``/``validate``, and the run's figures. ``nnexp.job`` runs them."""

from __future__ import annotations

from omegaconf import DictConfig

from nnexp import console as show
from nnexp.cross_validation import cross_validate
from nnexp.fit import build_loggers, fit_and_score
from nnexp.handoff import FitResult
from nnexp.plan import Plan
from nnexp.record import report
from nnexp.results import HISTORY_FILE, MODEL_SUMMARY_FILE, write_text_atomic


def run(cfg: DictConfig, console=None, plots_in_background: bool = False, key: str | None = None) -> float:
    """Train and test one configuration (or cross-validate it when ``cv > 1``) into its run dir,
    as a job with one member (``nnexp.job``), and return the sweep objective (NaN for a diverged
    run, or with ``mode`` params or validate). A finished run already in the dir is replaced: the
    caller chose the dir (the command line keeps it instead). With ``plots`` on, the run's
    figures are drawn here, or in a detached process when ``plots_in_background``."""
    from nnexp.job import Job, objective_of

    return objective_of(Job.single(cfg, console, plots_in_background=plots_in_background, key=key).run())


def show_plan(plan: Plan, console) -> None:
    """A training run's layer table unless quiet, after its config tree with ``print_config``
    (the run dir's config.yaml always has the whole config)."""
    if plan.cfg.get("print_config", False):
        console.print(show.config_tree(plan.cfg))
    if not plan.cfg.quiet:
        console.print(show.layer_table(plan.network.layers, plan.network.params))


def show_results(console, cfg: DictConfig, run_record, output_dir) -> None:
    """The run dir, then the scores table and the notes a user should act on."""
    if console.quiet:
        return
    console.print(f"[dim]run dir: {output_dir}", soft_wrap=True)  # a path to copy: never broken
    report(console, cfg, run_record)


def produce(plan: Plan, console) -> FitResult:
    """Train the plan: k cross-validation fits, or one fit whose history file grows epoch by epoch."""
    from nnexp.studies.trial_link import trial_link

    progress = None if plan.cfg.quiet else (lambda: progress_bar(console, plan))
    trial = trial_link(plan.cfg)
    if int(plan.cfg.cv) > 1:
        return cross_validate(plan, progress, trial)
    return fit_and_score(plan.cfg, plan.factories, plan.bundle, plan.fit_data, plan.stopping, plan.penalty, progress,
                         build_loggers(plan.cfg), history_file=plan.output_dir / HISTORY_FILE, trial=trial)


def progress_bar(console, plan: Plan):
    """A fit's live progress display."""
    from nnexp.training.callbacks import EpochProgress

    return EpochProgress(console, "r2" if plan.bundle.task == "regression" else "accuracy")




def describe(plan: Plan, console) -> None:
    """``mode=params`` and ``mode=validate``: the layer table (printed and saved), no training."""
    net = plan.network
    console.print(show.layer_table(net.layers, net.params))
    write_text_atomic(plan.output_dir / MODEL_SUMMARY_FILE, show.layer_text(net.layers, net.params))
    if plan.cfg.mode == "validate":
        check_fit_parts(plan)
        console.print(f"[green]config OK[/]: {plan.bundle.name}, {plan.bundle.task}, "
                      f"{len(plan.fit_data.train)} training rows, {net.params:,} parameters")


def check_fit_parts(plan: Plan) -> None:
    """What a fit builds before its first step: the optimiser, its schedule and the Trainer."""
    from nnexp.factory import call_factory
    from nnexp.fit import build_trainer
    from nnexp.training.hardware import resolve_precision
    from nnexp.training.lbfgs import is_lbfgs
    from nnexp.training.schedules import make_scheduler

    net = plan.network
    optimizer = call_factory("optim", net.optimizer_factory, net.module.parameters())
    if not is_lbfgs(net.optimizer_factory):  # L-BFGS takes no schedule
        make_scheduler(plan.factories.schedule, optimizer, len(plan.fit_data.train))
    accelerator = str(plan.cfg.trainer.get("accelerator", "cpu"))
    build_trainer(plan.cfg, plan.factories, [], [], resolve_precision(plan.cfg.trainer.get("precision", "auto"), net.module, accelerator))


def draw_plots(plan: Plan, console, in_background: bool) -> None:
    """The run's figures: drawn here, or by a detached process."""
    if in_background:
        from nnexp.plots.background import start_drawing

        start_drawing(plan.output_dir, "nnexp.plots.run_plots", "plots.log")
        console.print("[dim]plots: drawing in the background into the run dir (nnexp-plot waits for them)")
        return
    from nnexp.plots.run_plots import write_run_plots

    for path in write_run_plots(plan.output_dir):
        console.print(f"[dim]plot: {path}")
