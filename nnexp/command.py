"""The ``nnexp`` command in this process: its arguments read (``resume=``, scikit-learn's names,
help), Hydra's application run, and a user's mistake, a Ctrl-C or a stopped sweep turned into one
line and an exit code. The console entry point (``nnexp.cli``) and the warm server's forked child
(``nnexp.warm.server``) both call ``run``."""

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

    from nnexp.store import launch_only

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

    from nnexp.errors import NnexpError, Refusal
    from nnexp.interrupts import remembered

    try:
        with remembered(), skip_mode_probe() if multirun or mode_is_unset(sys.argv[1:]) else contextlib.nullcontext():
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
    except Refusal as refusal:  # refused inside Hydra's callbacks (nnexp.hydra_integration.folder_names)
        if os.environ.get("NNEXP_TRACEBACK"):
            raise refusal.error from None
        refuse(str(refusal.error))
    except BaseException as error:  # fail_fast's stop (nnexp.fail_fast is imported only by sweeps)
        stopped(error)
        raise
    finally:
        # Skip the full garbage collection of every loaded module at interpreter exit (~0.7 s).
        gc.freeze()


def mode_is_unset(argv: list[str]) -> bool:
    """Whether Hydra's mode probe (which composes the whole config once more) can only find
    ``hydra.mode`` unset: nnexp's packaged configs never set it (tests/test_configs.py checks), so
    only an override of it or a config dir of the user's can."""
    from nnexp.preflight import uses_user_config

    if uses_user_config(argv) or any(arg.startswith(("--config", "-c")) for arg in argv):  # argparse takes --config-d too
        return False
    return not any(arg.lstrip("+~").startswith("hydra.mode=") for arg in argv)


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
