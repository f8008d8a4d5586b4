"""The user's own config files, checked as strictly as the command line.

Before Hydra reads them, every YAML file of a user's config dir (``--config-dir``, ``-cd``,
``hydra.searchpath``) must parse and be a mapping. After composition, every key of the config
must be one that nnexp's configs or the component it configures (its ``_target_``) know, whatever
file or override set it: a misspelt key is one line with the nearest valid name, never a default
silently kept. This module imports nothing heavy unless a key is unknown to nnexp's own files.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import re
from importlib import resources
from pathlib import Path

from nnexp.errors import NnexpError
from nnexp.vocabulary import root_keys

DIR_FLAGS = ("--config-dir", "-cd")
# Groups whose nodes are handed to their component whole: their keys are the component's to check.
OPEN_GROUPS = ("hydra", "launcher", "logger", "callbacks", "sweep", "experiment", "paths")


def user_config_dirs(argv: list[str]) -> list[Path]:
    """The config dirs a command line adds (``--config-dir DIR``, ``-cd=DIR``, ``hydra.searchpath=[...]``)."""
    dirs = []
    for index, arg in enumerate(argv):
        flag, _, value = arg.partition("=")
        if flag in DIR_FLAGS:
            value = value or (argv[index + 1] if index + 1 < len(argv) else "")
            dirs.append(Path(value).expanduser())
        elif flag.lstrip("+") == "hydra.searchpath":
            dirs += [Path(item.split("://", 1)[-1]) for item in re.findall(r"file://[^,\]\s'\"]+", value)]
    return dirs


def check_user_files(argv: list[str]) -> None:
    """Raise NnexpError naming the file, the line and the fix for a user's config file that is
    not YAML, or not a mapping (Hydra would ignore such a file or print its own traceback)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for folder in user_config_dirs(argv):
        if not folder.is_dir():
            raise NnexpError(f"--config-dir {folder}: no such folder; give the folder that holds your config groups")
        for path in sorted(folder.rglob("*.yaml")):
            try:
                content = yaml.load(path.read_text(), Loader=loader)
            except yaml.YAMLError as error:
                mark = getattr(error, "problem_mark", None)
                where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
                problem = getattr(error, "problem", None) or str(error).splitlines()[0]
                raise NnexpError(f'{problem} in "{path}"{where}: not valid YAML; fix the indentation, or close the '
                                 "bracket or quote, there") from None
            except (OSError, UnicodeDecodeError) as error:
                raise NnexpError(f"{path}: cannot read it ({error}); save it as UTF-8 text") from None
            if content is not None and not isinstance(content, dict):
                raise NnexpError(f"{path}, line 1: a config file is a mapping of keys (key: value), not a "
                                 f"{type(content).__name__}; e.g. lr: 0.01")


@functools.cache
def packaged_options() -> tuple[tuple[str, str, dict, bool], ...]:
    """(group, file name, content, is @package _global_) of every option file nnexp ships, read once per process."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    root = resources.files("nnexp.configs")
    options = []
    for group in root.iterdir():
        if group.is_dir() and not group.name.startswith("_"):
            for option in group.iterdir():
                if option.name.endswith(".yaml"):
                    text = option.read_text()
                    node = yaml.load(text, Loader=loader)
                    options.append((group.name, option.name, node if isinstance(node, dict) else {},
                                    "@package _global_" in text.split("\n", 3)[0]))
    return tuple(options)


def group_options(group: str) -> list[tuple[str, dict]]:
    """(option name, content) of each option nnexp ships for ``group`` (``optim`` -> sgd, adam ...;
    shared parts such as ``_tabular.yaml`` left out)."""
    return [(name.removesuffix(".yaml"), node) for option_group, name, node, _ in packaged_options()
            if option_group == group and not name.startswith("_")]


@functools.cache
def packaged_keys() -> dict[tuple[str, str | None], frozenset[str]]:
    """(group, _target_) -> every key that nnexp's own options of that group set for that target
    (shared parts such as ``data/_tabular.yaml`` count for every target of their group)."""
    known: dict[tuple[str, str | None], set[str]] = {}
    shared: dict[str, set[str]] = {}
    for group, name, node, _ in packaged_options():
        if group in OPEN_GROUPS:
            continue
        if name.startswith("_"):
            shared.setdefault(group, set()).update(node)
        else:
            known.setdefault((group, node.get("_target_")), set()).update(node)
    return {key: frozenset(keys | shared.get(key[0], set()) | {"defaults"}) for key, keys in known.items()}


def interpolated_names(container) -> set[str]:
    """The root keys that ``${...}`` interpolations anywhere in a config read (a user's own keys)."""
    names: set[str] = set()
    stack = [container]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str) and "${" in node:
            names |= {name for name in re.findall(r"\$\{\s*([A-Za-z_][\w]*)", node)}
    return names


def check_keys(settings: dict, unresolved=None) -> None:
    """Raise NnexpError for the first key nnexp has no use for: a root key that no config or
    interpolation knows, or a key of a group's node that neither nnexp's options for its
    ``_target_`` nor the target's own signature take. ``settings`` is the resolved config, and
    ``unresolved`` (a callable) gives it with its ``${...}`` interpolations."""
    known_roots = root_keys()
    unknown_roots = [key for key in settings if key not in known_roots]
    used = interpolated_names(unresolved()) if unknown_roots and unresolved else set()
    for key in unknown_roots:
        if key not in used:
            from nnexp.vocabulary import RENAMED, did_you_mean

            hint = f" (scikit-learn's {key} is nnexp's {RENAMED[key]})" if key in RENAMED else did_you_mean(key, known_roots)
            raise NnexpError(f"{key}: nnexp has no key {key}{hint}; a config file or override sets it and nothing "
                             "reads it. Fix its name, or remove it")
    packaged = packaged_keys()
    for group, node in settings.items():
        if not isinstance(node, dict) or group in OPEN_GROUPS:
            continue
        target = node.get("_target_")
        allowed = packaged.get((group, target))
        if allowed is None:
            if not any(key[0] == group for key in packaged):
                continue  # not one of nnexp's groups
            allowed = frozenset({"_target_", "_partial_", "_convert_", "_recursive_", "_args_"})
        unknown = [key for key in node if key not in allowed and not key.startswith("_")]
        if unknown and isinstance(target, str):
            taken = target_parameters(target)
            if taken is None:  # takes **kwargs, or could not be inspected: the target checks them itself
                continue
            allowed = allowed | taken
            unknown = [key for key in unknown if key not in allowed]
        if unknown:
            key = unknown[0]
            raise NnexpError(f"{group}.{key}: {group} ({target or 'no _target_'}) has no setting {key}"
                             f"{nearest(key, set(allowed) - {'defaults'}, prefix=group + '.')}; fix its name, or "
                             "remove it")


def target_parameters(target: str) -> frozenset[str] | None:
    """The keyword parameters a ``_target_`` takes: a class's own and, while its ``__init__`` passes
    ``**kwargs`` on, its base classes'. None when it takes any keyword in the end, or cannot be
    imported (instantiating it then says why)."""
    from hydra.utils import get_method

    try:
        function = get_method(target)
        initialisers = ([cls.__dict__["__init__"] for cls in function.__mro__ if "__init__" in cls.__dict__]
                        if inspect.isclass(function) else [function])
        names: set[str] = set()
        for initialiser in initialisers:
            parameters = inspect.signature(initialiser).parameters.values()
            names |= {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
            if not any(p.kind is p.VAR_KEYWORD for p in parameters):
                return frozenset(names)
    except Exception:  # noqa: BLE001  (an import error is reported when the target is instantiated)
        return None
    return None


def nearest(name: str, known, prefix: str = "") -> str:
    """`` (did you mean X?)`` for the closest known name, or nothing."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


OVERRIDE_NOT_IN_STRUCT = re.compile(r"Could not override '([\w.]+)'")


def misspelt_override(message: str) -> str | None:
    """Hydra's "Could not override 'optim.lrr' ... use +optim.lrr" as nnexp's line, which names the
    key that exists rather than suggesting to add a new one."""
    match = OVERRIDE_NOT_IN_STRUCT.search(message)
    if not match or "not in struct" not in message:
        return None
    key = match.group(1)
    group, _, rest = key.rpartition(".")
    if not group:
        from nnexp.vocabulary import did_you_mean

        return f"{key}: nnexp has no key {key}{did_you_mean(key, root_keys())}; `nnexp --help` lists the keys and groups"
    root = group.split(".")[0]
    if group == root:  # another option of the group takes it (optim.momentum under optim=adam): name those
        takers = sorted(name for name, node in group_options(root) if rest in node)
        if takers:
            return (f"{key}: the chosen {root} has no setting {rest}; {' and '.join(f'{root}={name}' for name in takers[:3])}"
                    f"{' ...' if len(takers) > 3 else ''} take{'s' if len(takers) == 1 else ''} it: choose one, or remove {key}")
    names = set().union(*(keys for (name, _), keys in packaged_keys().items() if name == root))
    names -= {"defaults", "_target_", "_partial_"}
    hint = nearest(rest, names, prefix=group + ".") if group == root else ""
    return (f"{key}: {group} has no setting {rest}{hint}; fix its name (+{key}=... adds a key only for a "
            "component that takes it)")


NAMED_PATHS = {  # a key whose value names a folder or file under a root, and the explicit override that replaces it
    "task_name": ("outputs/", "hydra.run.dir"),
    "hydra.job.name": ("the run dir (it names the log file, <name>.log)", None),
    "hydra.sweeper.study_name": ("the sweep dir", None),
}


def escapes_root(name) -> bool:
    """Whether a name used as a folder would leave its root folder (absolute, ``..``, ``~``)."""
    path = Path(str(name))
    return path.is_absolute() or ".." in path.parts or str(name).startswith("~")


def check_path_names(values: dict, explicit: set[str]) -> None:
    """Raise NnexpError for a name that would put a run, sweep or store folder outside its root;
    ``explicit`` holds the keys the user set themselves (hydra.run.dir: their choice, kept)."""
    for key, (root, override) in NAMED_PATHS.items():
        value = values.get(key)
        if value is not None and escapes_root(value) and override not in explicit:
            fix = f", or set {override}=DIR to choose the folder yourself" if override else ""
            raise NnexpError(f"{key}={value} would write outside {root}; give a plain name such as my_run (a/b makes "
                             f"subfolders){fix}")


def command_line_path_names(argv: list[str]) -> None:
    """``check_path_names`` on a command line's overrides, before Hydra makes any folder."""
    values, explicit = {}, set()
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or arg.startswith("-"):
            continue
        key = key.lstrip("+~")
        explicit.add(key)
        if key in NAMED_PATHS:  # a sweep's comma-separated options: the first that escapes
            values[key] = next((option for option in value.split(",") if escapes_root(option)), None)
    check_path_names(values, explicit)


def composed_path_names(config) -> None:
    """``check_path_names`` on a composed config, whose names a user's config files may set, before
    Hydra makes any folder; the hydra keys set on the command line are the user's explicit choice."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    values = {}
    for key in NAMED_PATHS:
        try:
            values[key] = OmegaConf.select(config, key, default=None)
        except OmegaConfBaseException:  # an interpolation that cannot resolve: Hydra names it when it reads it
            continue
    explicit = {override.split("=", 1)[0].lstrip("+~") for override in OmegaConf.select(config, "hydra.overrides.hydra") or ()}
    check_path_names(values, explicit)
