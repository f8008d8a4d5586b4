"""Console entry points. Heavy imports (torch, Lightning) happen only once a run starts."""

from __future__ import annotations

import contextlib
import gc
import io
import math
import os
import sys
from importlib import resources
from importlib.util import find_spec
from pathlib import Path

import hydra
from omegaconf import DictConfig

from nnexp.fast_yaml import use_libyaml

CONFIG_PACKAGE = "nnexp.configs"
USER_CONFIG_FLAGS = ("--config-dir", "-cd", "--config-path", "-cp", "hydra.searchpath")
PLUGINS = {  # group options that need a Hydra plugin: (module, pip requirement)
    ("launcher", "joblib"): ("hydra_plugins.hydra_joblib_launcher", "hydra-joblib-launcher"),
    ("launcher", "submitit_local"): ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher"),
    ("launcher", "slurm"): ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher"),
    ("sweep", "optuna_mlp"): ("hydra_plugins.hydra_optuna_sweeper", "hydra-optuna-sweeper"),
}


def config_groups() -> dict[str, list[str]]:
    """Every config group shipped with nnexp and its options (files starting with _ are shared parts)."""
    root = resources.files(CONFIG_PACKAGE)
    return {
        group.name: sorted(
            item.name[: -len(".yaml")]
            for item in group.iterdir()
            if item.name.endswith(".yaml") and not item.name.startswith("_")
        )
        for group in root.iterdir()
        if group.is_dir() and group.name not in ("hydra", "__pycache__")
    }


def uses_user_config(argv: list[str]) -> bool:
    """Whether the command adds a config dir of the user's (its groups and keys are unknown here)."""
    return any(arg.split("=")[0] in USER_CONFIG_FLAGS for arg in argv)


def unknown_group_option(argv: list[str]) -> str | None:
    """A one-line message for ``group=option`` overrides that nnexp cannot honour: an option it
    does not have, or one whose Hydra plugin is not installed.

    Hydra's own message for a missing option spans a dozen lines; with a user config dir the
    check is left to Hydra.
    """
    if uses_user_config(argv):
        return None
    groups = config_groups()
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        key = key.lstrip("+")
        if key not in groups or any(ch in value for ch in "()[]{}$*"):
            continue
        for option in value.split(","):
            if option not in groups[key] and option != "null":
                return f"{key}={option} is not an option; choose one of: {', '.join(groups[key])}"
            module, requirement = PLUGINS.get((key, option), (None, None))
            if module and not plugin_installed(module):
                return f"{key}={option} needs the Hydra plugin {requirement}: pip install 'nnexp[sweeps]'"
    return None


def plugin_installed(module: str) -> bool:
    """Whether ``hydra_plugins.<name>`` can be imported (hydra_plugins is a namespace package)."""
    try:
        return find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def resume_argv(argv: list[str]) -> list[str]:
    """Turn ``resume=DIR`` into the sweep command recorded in DIR, relaunched into DIR itself."""
    rest = [arg for arg in argv if not arg.startswith("resume=")]
    if len(rest) == len(argv):
        return argv
    import yaml

    sweep_dir = Path(next(arg for arg in argv if arg.startswith("resume=")).split("=", 1)[1])
    recorded = sweep_dir / "multirun.yaml"
    if not recorded.is_file():
        raise SystemExit(f"error: resume={sweep_dir}: no multirun.yaml there; give the root dir of an earlier sweep")
    overrides = yaml.safe_load(recorded.read_text())["hydra"]["overrides"]["task"]
    return ["-m", *overrides, f"hydra.sweep.dir={sweep_dir}", *[arg for arg in rest if arg not in ("-m", "--multirun")]]


@hydra.main(config_path=f"pkg://{CONFIG_PACKAGE}", config_name="train", version_base="1.3")
def _train(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from nnexp.errors import NnexpError
    from nnexp.runner import run

    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN:
        return run_sweep_job(cfg, hydra_cfg)
    try:
        objective = run(cfg, plots_in_background=True)
    except NnexpError as error:
        if os.environ.get("NNEXP_TRACEBACK"):
            raise
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(error.exit_code) from None
    if cfg.mode == "train" and math.isnan(objective):
        raise SystemExit(1)  # diverged: metrics.json holds status "diverged"
    return objective


def run_sweep_job(cfg: DictConfig, hydra_cfg) -> float:
    """One job of a multirun: a one-line report instead of the full console output."""
    from omegaconf import open_dict
    from rich.console import Console

    from nnexp.runner import run
    from nnexp.sweeps.jobs import run_job

    label = f"job {hydra_cfg.job.num}: {' '.join(hydra_cfg.overrides.task) or '(defaults)'}"
    with open_dict(cfg):
        cfg.quiet = True  # no config tree, layer table or progress bar per job
        cfg.plots = False  # the sweep root gets the sweep's figures; nnexp-plot draws any job's
    silent = Console(quiet=True)
    objective = run_job(cfg, lambda job_cfg: run(job_cfg, console=silent), say=lambda text: print(f"{label} -> {text}"))
    if not math.isnan(objective):
        print(f"{label} -> objective {objective:.4f}")
    return objective


def register_launcher() -> None:
    """Register nnexp's in-process launcher and sweeper with Hydra. Hydra finds plugins by scanning
    the ``hydra_plugins`` folders on sys.path, which an editable install does not have."""
    from hydra.core.plugins import Plugins

    # Scan first: the scan re-executes Hydra's core plugin modules, and our classes must subclass
    # the BasicLauncher/BasicSweeper that exist after it.
    plugins = Plugins.instance()
    from hydra_plugins.nnexp_launcher import BatchedLauncher, InProcessLauncher, InProcessSweeper

    plugins.register(InProcessLauncher)
    plugins.register(InProcessSweeper)
    plugins.register(BatchedLauncher)


@contextlib.contextmanager
def skip_mode_probe():
    """Before a run Hydra composes the whole config once only to read ``hydra.mode`` (~75 ms).
    With ``-m`` the answer cannot change what runs: every mode, or none, makes it a multirun
    with ``hydra.mode=MULTIRUN``, so the probe reports "unset" without composing."""
    from hydra._internal.hydra import Hydra

    probe = Hydra.get_mode
    Hydra.get_mode = lambda self, config_name, overrides: None
    try:
        yield
    finally:
        Hydra.get_mode = probe


def sklearn_names(argv: list[str]) -> list[str]:
    """The command line with scikit-learn's parameter names as nnexp's keys (``nnexp.vocabulary``);
    says which it renamed. A name or key nnexp does not know is a one-line error (exit 2)."""
    from nnexp.errors import NnexpError
    from nnexp.vocabulary import translate

    try:
        argv, renamed = translate(argv, check_keys=not uses_user_config(argv))
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
    """``nnexp [overrides]``: train the composed config; ``nnexp -m ...`` sweeps it."""
    use_libyaml()
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
                _train()  # Hydra prints its help and exits
        finally:
            sys.stdout.write(without_shared_parts(help_text.getvalue()))
        return
    if multirun:
        register_launcher()
    problem = unknown_group_option(sys.argv[1:])
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        raise SystemExit(2)
    try:
        with skip_mode_probe() if multirun else contextlib.nullcontext():
            _train()
    finally:
        # Skip the full garbage collection of every loaded module at interpreter exit (~0.7 s).
        gc.freeze()


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
    from nnexp.plots.cli import draw

    try:
        for path in draw(args.directory, args.kind, args.image):
            print(f"plot: {path}")
    except (NnexpError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    gc.freeze()


def summary_main() -> None:
    """``nnexp-summary DIR [--refit] [--no-plots]``: (re)summarise any sweep dir, finished or not."""
    import argparse

    parser = argparse.ArgumentParser(prog="nnexp-summary", description=summary_main.__doc__)
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--refit", action="store_true", help="retrain the best config and report its test score")
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args()
    if not args.sweep_dir.is_dir():
        print(f"error: {args.sweep_dir} is not a directory; give the root dir of a sweep", file=sys.stderr)
        raise SystemExit(2)
    from nnexp.sweeps.summary import summarise

    use_libyaml()
    summarise(args.sweep_dir, refit=args.refit, plots=not args.no_plots)
    gc.freeze()


if __name__ == "__main__":
    main()
