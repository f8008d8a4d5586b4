"""Console entry points, thin: ``nnexp`` (in a warm server's fork, or ``nnexp.command`` here),
``nnexp-params``, ``nnexp-plot`` and ``nnexp-summary``. Heavy imports (torch, Lightning) happen
only once a run starts."""

from __future__ import annotations

import gc
import sys
from pathlib import Path


def main() -> None:
    """``nnexp [overrides]``: train the composed config; ``nnexp -m ...`` sweeps it. On an
    interactive terminal (or with ``NNEXP_WARM=1``) the command runs in a warm server's fork
    (``nnexp.warm``; ``NNEXP_WARM=0`` turns it off). Nothing else is imported before that choice:
    the command's modules (OmegaConf's among them) took 0.11-0.14 s of a warm command's 0.27 s."""
    from nnexp.warm import wanted

    if wanted():
        from nnexp.warm.client import run_in_server

        status = run_in_server(sys.argv)
        if status is not None:
            raise SystemExit(status)
    from nnexp.command import run

    run()


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
    from nnexp.command import refuse
    from nnexp.compat import use_libyaml_for_omegaconf
    from nnexp.sweeps.grid import SWEEP_RECORD

    if args.study:
        return study_summary(args)
    if args.sweep_dir is None:
        refuse("give a sweep dir (nnexp-summary multirun/<date>/<time>) or a study (nnexp-summary --study NAME --storage URL)")
    if not (args.sweep_dir / SWEEP_RECORD).is_file():
        refuse(f"{args.sweep_dir} is not a sweep dir (it has no {SWEEP_RECORD}); give the root dir of a sweep, "
               "e.g. multirun/<date>/<time>")
    from nnexp.sweeps.summary import summarise

    use_libyaml_for_omegaconf()
    if args.refit:
        from nnexp.process import set_up_process

        set_up_process()  # the refit trains in this process: Lightning quiet, as in a run
    summarise(args.sweep_dir, refit=args.refit, plots=not args.no_plots, refit_incomplete=args.refit_incomplete)
    gc.freeze()


def study_summary(args) -> None:
    """``nnexp-summary --study``: the study's table, best command and figures, from its storage."""
    from nnexp.command import refuse
    from nnexp.preflight import one_line
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
