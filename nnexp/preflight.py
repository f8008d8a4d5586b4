"""The command line's checks before Hydra composes anything, shared by the CLI and the Python API:
group options that exist (and their plugins), users' config files, and the one-line forms of an
error and of an interrupted sweep."""

from __future__ import annotations

from importlib import resources
from importlib.util import find_spec
from pathlib import Path

from nnexp.hydra_integration.app import CONFIG_PACKAGE

USER_CONFIG_FLAGS = ("--config-dir", "-cd", "--config-path", "-cp", "hydra.searchpath")
PLUGINS = {  # group options that need a Hydra plugin: (module, pip requirement)
    ("launcher", "joblib"): ("hydra_plugins.hydra_joblib_launcher", "hydra-joblib-launcher"),
    ("launcher", "submitit_local"): ("submitit", "submitit"),
    ("launcher", "slurm"): ("submitit", "submitit"),
    ("sweep", "optuna_mlp"): ("optuna", "optuna"),
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
    return any(arg.split("=")[0].lstrip("+~") in USER_CONFIG_FLAGS for arg in argv)


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
            if option not in groups[key]:
                unset = f" (leave {key} out for none: Hydra takes no null for a group)" if option == "null" else ""
                return f"{key}={option} is not an option{unset}; choose one of: {', '.join(groups[key])}"
            module, requirement = PLUGINS.get((key, option), (None, None))
            if module and not plugin_installed(module):
                return f"{key}={option} needs {requirement}: pip install 'nnexp[sweeps]'"
    return None


def user_file_problem(argv: list[str]) -> str | None:
    """The one line for a user's config file that is not YAML or not a mapping, or for a name that
    would put a folder outside its root (``nnexp.config_files``)."""
    from nnexp.config_files import check_user_files, command_line_path_names
    from nnexp.errors import NnexpError

    try:
        command_line_path_names(argv)
        if uses_user_config(argv):
            check_user_files(argv)
    except NnexpError as error:
        return str(error)
    return None


def plugin_installed(module: str) -> bool:
    """Whether ``hydra_plugins.<name>`` can be imported (hydra_plugins is a namespace package)."""
    try:
        return find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def one_line(error: BaseException) -> str:
    """An exception's message as one line: its own first line, and its cause's when that says more
    (a YAML file's syntax error names the file, line and column)."""
    from nnexp.errors import NnexpError

    if isinstance(error.__cause__, NnexpError):  # a plugin's own check, which Hydra wrapped in its instantiation error
        return str(error.__cause__)
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = " ".join(lines[:2]) if lines else type(error).__name__
    if len(lines) > 2 and lines[1].startswith("Available options in"):  # Hydra lists a group's options a line each
        options = []
        for line in lines[2:]:
            if ":" in line:  # the next section (Hydra's config search path)
                break
            if not line.startswith("_"):  # nnexp's shared parts, not options
                options.append(line)
        text = f"{lines[0]}; {lines[1]} {', '.join(options)}"
    if getattr(error, "override", None):  # Hydra's override grammar: say which override
        text = f"{error.override}: {text}"
    cause = error.__cause__ or error.__context__
    if cause is not None and str(cause).strip() and str(cause).strip() not in text:
        text += " (" + " ".join(line.strip() for line in str(cause).splitlines() if line.strip())[:300] + ")"
    return text


def kept_message(sweep_dir: Path) -> str:
    """What an interrupted sweep kept, and the command that goes on."""
    from nnexp.metrics import read_record

    kept = 0
    for path in Path(sweep_dir).glob("*/metrics.json"):
        try:
            kept += read_record(path).finished
        except (OSError, ValueError):
            pass
    return f"interrupted: {kept} finished {'job' if kept == 1 else 'jobs'} kept in {sweep_dir}; go on with: nnexp resume={sweep_dir}"


def rewritten(argv: list[str]) -> tuple[list[str], list[str]]:
    """The command line with scikit-learn's spellings as nnexp's (``(10,10,10)`` as a list, its
    parameter names as nnexp's keys) and what was renamed; NnexpError for a name nnexp does not know."""
    from nnexp.sklearn_spellings import tuples_as_lists
    from nnexp.vocabulary import translate

    argv, _ = tuples_as_lists(argv)  # scikit-learn's (10,10,10) is Hydra's [10,10,10]
    return translate(argv, check_keys=not uses_user_config(argv))

