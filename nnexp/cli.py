"""Console entry points. Heavy imports (torch, Lightning) happen only once a run starts."""

from __future__ import annotations

import contextlib
import gc
import io
import os
import sys
from pathlib import Path

from nnexp.compat import skip_mode_probe, use_libyaml_for_omegaconf
from nnexp.errors import set_hydra_environment
from nnexp.hydra_integration.app import hydra_app, register_plugins
from nnexp.preflight import kept_message, one_line, unknown_group_option, user_file_problem
from nnexp.sweeps.grid import SWEEP_RECORD
def refuse(message: str) -> None:
    """A user's mistake: one line on stderr, exit code 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def resume_argv(argv: list[str]) -> list[str]:
    """Turn ``resume=DIR`` into the sweep command recorded in DIR, relaunched into DIR itself,
    with the launcher settings it was launched with. Overrides that only change how the jobs are
    launched or shown may be added; one that would change what a job computes is refused (the
    sweep's finished jobs would be retrained into their own dirs)."""
    rest = [arg for arg in argv if not arg.startswith("resume=")]
    if len(rest) == len(argv):
        return argv
    import shlex

    import yaml

    sweep_dir = Path(next(arg for arg in argv if arg.startswith("resume=")).split("=", 1)[1])
    recorded = sweep_dir / SWEEP_RECORD
    if not recorded.is_file():
        refuse(f"resume={sweep_dir}: no {SWEEP_RECORD} there; give the root dir of an earlier sweep")
    overrides = yaml.safe_load(recorded.read_text())["hydra"]["overrides"]
    task = list(overrides.get("task") or [])
    launch = [o for o in overrides.get("hydra") or [] if not o.startswith(("hydra.sweep.dir=", "hydra.mode="))]
    added = [arg for arg in rest if arg not in ("-m", "--multirun")]
    changing = [arg for arg in added if not arg.startswith("-") and not launch_only(arg)]
    if changing:
        changed = {arg.split("=", 1)[0] for arg in changing}
        kept = [arg for arg in task if arg.split("=", 1)[0] not in changed]
        refuse(f"resume={sweep_dir} finishes the sweep recorded there; {' '.join(changing)} would change what its "
               "jobs compute. Start a new sweep instead: nnexp " + shlex.join(["-m", *kept, *changing]))
    return ["-m", *task, *launch, f"hydra.sweep.dir={sweep_dir}", *added]


def launch_only(override: str) -> bool:
    """Whether an override changes only how jobs are launched, shown or stored, not their results."""
    from nnexp.store import VOLATILE_KEYS

    key = override.split("=", 1)[0].lstrip("+~")
    return key.split(".")[0].split("/")[0] in (*VOLATILE_KEYS, "launcher")


def sklearn_names(argv: list[str]) -> list[str]:
    """The command line with scikit-learn's parameter names as nnexp's keys (``nnexp.vocabulary``);
    says which it renamed. A name or key nnexp does not know is a one-line error (exit 2)."""
    from nnexp.errors import NnexpError
    from nnexp.preflight import rewritten

    try:
        argv, renamed = rewritten(argv)
    except NnexpError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    if renamed:
        print(f"scikit-learn names: {'; '.join(renamed)}", file=sys.stderr)
    return argv


CFG_FLAGS = ("--cfg", "-c", "--info", "-i")


def without_shared_parts(help_text: str) -> str:
    """Hydra's help with the shared config parts (``data: _tabular, ...``) left out of the group lists."""
    lines = []
    for line in help_text.splitlines():
        group, _, options = line.partition(": ")
        if options and group.isidentifier() and "," in options:
            line = f"{group}: " + ", ".join(option for option in options.split(", ") if not option.startswith("_"))
        lines.append(line)
    return "\n".join(lines) + "\n"


def main() -> None:
    """``nnexp [overrides]``: train the composed config; ``nnexp -m ...`` sweeps it. On an
    interactive terminal (or with ``NNEXP_WARM=1``) the command runs in a warm server's fork
    (``nnexp.warm``; ``NNEXP_WARM=0`` turns it off)."""
    from nnexp.warm import wanted

    if wanted():
        from nnexp.warm.client import run_in_server

        status = run_in_server(sys.argv)
        if status is not None:
            raise SystemExit(status)
    run()


def run() -> None:
    """The ``nnexp`` command in this process, on ``sys.argv``."""
    if sys.argv[1:] in (["--version"], ["-V"]):
        from nnexp.provenance import version_lines

        print("\n".join(version_lines()))
        return
    use_libyaml_for_omegaconf()
    sys.argv[1:] = resume_argv(sys.argv[1:])
    sys.argv[1:] = sklearn_names(sys.argv[1:])
    multirun = "-m" in sys.argv or "--multirun" in sys.argv
    if multirun and any(flag in sys.argv for flag in CFG_FLAGS):
        print("error: --cfg and --info show one run's config: drop -m (e.g. nnexp --cfg job data=iris seed=0); "
              "a finished sweep records its own in <sweep dir>/multirun.yaml", file=sys.stderr)
        raise SystemExit(2)
    if "--help" in sys.argv or "-h" in sys.argv:
        help_text = io.StringIO()
        try:
            with contextlib.redirect_stdout(help_text):
                hydra_app()()  # Hydra prints its help and exits
        finally:
            sys.stdout.write(without_shared_parts(help_text.getvalue()))
        return
    register_plugins()
    problem = unknown_group_option(sys.argv[1:]) or user_file_problem(sys.argv[1:])
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        raise SystemExit(2)
    # Hydra raises its errors instead of printing a dozen lines, so that each is one line here, whatever
    # the user's HYDRA_FULL_ERROR and Hydra's other variables say (NNEXP_TRACEBACK=1 shows tracebacks).
    set_hydra_environment()
    import yaml
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from nnexp.errors import NnexpError
    from nnexp.interrupts import remembered

    try:
        with remembered(), skip_mode_probe() if multirun else contextlib.nullcontext():
            hydra_app()()
    except KeyboardInterrupt as error:
        interrupted(getattr(error, "sweep_dir", None))
    except NnexpError as error:  # a sweeper's or launcher's setting (the task function reports its own)
        if os.environ.get("NNEXP_TRACEBACK"):
            raise
        refuse(str(error))
    except (HydraException, OmegaConfBaseException, yaml.YAMLError) as error:  # composing the config: the user's to fix
        if os.environ.get("NNEXP_TRACEBACK"):
            raise
        from nnexp.config_files import misspelt_override

        refuse(misspelt_override(one_line(error)) or one_line(error))
    except OSError as error:  # a run or sweep dir that cannot be made: read-only, full, not a folder
        if os.environ.get("NNEXP_TRACEBACK") or error.filename is None:
            raise
        from nnexp.errors import unwritable_path

        print(f"error: {unwritable_path(error)}", file=sys.stderr)
        raise SystemExit(1) from None
    except BaseException as error:  # fail_fast's stop (nnexp.fail_fast is imported only by sweeps)
        stopped(error)
        raise
    finally:
        # Skip the full garbage collection of every loaded module at interpreter exit (~0.7 s).
        gc.freeze()


def stopped(error: BaseException) -> None:
    """The sweep stopped early (``fail_fast=true``, or cluster tasks that could not start): write
    its summary, say why in one line; exit 1 (2 for a cluster request to change)."""
    fail_fast = sys.modules.get("nnexp.fail_fast")
    if fail_fast is None or not isinstance(error, fail_fast.SweepStopped):
        return
    fail_fast.stopped_summary(error)
    print(f"error: {error}", file=sys.stderr)
    raise SystemExit(error.exit_code) from None


def interrupted(sweep_dir: Path | None) -> None:
    """Ctrl-C: say what was kept and the command that goes on; exit 130 (128 + SIGINT), as shells do."""
    print("interrupted" if sweep_dir is None else kept_message(sweep_dir), file=sys.stderr)
    raise SystemExit(130)


def params_main() -> None:
    """``nnexp-params [overrides]``: print each layer's output shape and parameter count, no training."""
    sys.argv[1:] = ["mode=params", *sys.argv[1:]]
    main()


PLOT_KINDS = ("curves", "boundary", "fit", "confusion", "weights", "filters", "features", "grid", "all")


def plot_main() -> None:
    """``nnexp-plot DIR [kind]``: redraw a run's or a sweep's figures from its files, without retraining."""
    import argparse

    parser = argparse.ArgumentParser(prog="nnexp-plot", description=plot_main.__doc__)
    parser.add_argument("directory", type=Path, help="a run dir (has metrics.json) or a sweep dir")
    parser.add_argument("kind", nargs="?", default="all", choices=PLOT_KINDS)
    parser.add_argument("--image", type=int, default=0, help="test image for features")
    args = parser.parse_args()
    from nnexp.errors import NnexpError
    from nnexp.drawing import draw

    try:
        for path in draw(args.directory, args.kind, args.image):
            print(f"plot: {path}")
    except (NnexpError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    gc.freeze()


def summary_main() -> None:
    """``nnexp-summary DIR [--refit] [--no-plots]``: (re)summarise any sweep dir, finished or not;
    ``nnexp-summary --study NAME --storage URL [--out DIR]``: every trial of an Optuna study."""
    import argparse

    parser = argparse.ArgumentParser(prog="nnexp-summary", description=summary_main.__doc__)
    parser.add_argument("sweep_dir", type=Path, nargs="?")
    parser.add_argument("--refit", action="store_true", help="retrain the best config and report its test score")
    parser.add_argument("--refit-incomplete", action="store_true", help="refit even when some jobs have not finished")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--study", help="an Optuna study's name: summarise every trial of every worker")
    parser.add_argument("--storage", default="sqlite:///nnexp_optuna.db", help="the study's storage URL (with --study)")
    parser.add_argument("--out", type=Path, help="where --study writes study.csv and its figures (default: study-NAME)")
    args = parser.parse_args()
    if args.study:
        return study_summary(args)
    if args.sweep_dir is None:
        refuse("give a sweep dir (nnexp-summary multirun/<date>/<time>) or a study (nnexp-summary --study NAME --storage URL)")
    if not (args.sweep_dir / SWEEP_RECORD).is_file():
        refuse(f"{args.sweep_dir} is not a sweep dir (it has no {SWEEP_RECORD}); give the root dir of a sweep, "
               "e.g. multirun/<date>/<time>")
    from nnexp.sweeps.summary import summarise

    use_libyaml_for_omegaconf()
    summarise(args.sweep_dir, refit=args.refit, plots=not args.no_plots, refit_incomplete=args.refit_incomplete)
    gc.freeze()


def study_summary(args) -> None:
    """``nnexp-summary --study``: the study's table, best command and figures, from its storage."""
    from nnexp.studies.storage import open_study
    from nnexp.studies.summary import summarise_study

    try:
        study = open_study(args.study, args.storage)
    except KeyError:
        refuse(f"--study {args.study}: no study of that name in {args.storage}; give the sweep's "
               "hydra.sweeper.study_name and hydra.sweeper.storage")
    except Exception as error:  # noqa: BLE001  (a storage that cannot be opened: bad URL, server down, no driver)
        refuse(f"--storage {args.storage}: cannot open it ({one_line(error)}); give the sweep's hydra.sweeper.storage")
    from nnexp.config_files import escapes_root

    if args.out is None and escapes_root(args.study):  # the default folder is named after the study
        refuse(f"--study {args.study}: its default folder study-{args.study} would leave this folder; add --out DIR")
    summarise_study(study, args.out or Path(f"study-{args.study}"), figures=not args.no_plots)


if __name__ == "__main__":
    main()
