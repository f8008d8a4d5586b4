"""The one place nnexp reaches into Hydra's, OmegaConf's and Lightning's private code, each time
for speed.

Each speed-up probes for the private feature it relies on (a name, a signature, a flag), not
for a version number, and takes the public path when the probe fails: slower, same result.
Where a release does the fast thing itself, the speed-up is left out. A speed-up that cannot
apply says so once, at debug level; ``compatibility_paths()`` lists the path each one takes.
Nothing else in nnexp imports ``hydra._internal``, ``omegaconf._utils`` or
``lightning_fabric.utilities.registry``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
from types import ModuleType
from typing import Any, Iterator

import yaml
from omegaconf import DictConfig, OmegaConf, flag_override

log = logging.getLogger(__name__)

FAST, PUBLIC, NOT_NEEDED = "fast path", "public path", "not needed"

LIBYAML_LOADER = "omegaconf yaml loader"
STRING_QUOTING = "omegaconf string quoting"
MODE_PROBE = "hydra mode probe"
HYDRA_CONFIG = "hydra job config"
LIGHTNING_CALLBACK_SCAN = "lightning callback entry points"
RUN_CALLBACKS = "hydra run callbacks"

_paths: dict[str, str] = {}


def _take(name: str, path: str, why: str) -> None:
    """Record which path ``name`` takes; say once, at debug level, why a speed-up does not apply."""
    if name not in _paths:
        _paths[name] = f"{path}: {why}"
        if path != FAST:
            log.debug("nnexp.compat: %s takes the %s (%s)", name, path, why)


@functools.cache
def _omegaconf_loader_module() -> ModuleType | None:
    """The OmegaConf module whose ``get_yaml_loader`` every load goes through (``_utils`` in 2.3,
    ``_yaml`` in 2.4), if there is one that takes no arguments."""
    for name in ("omegaconf._utils", "omegaconf._yaml"):
        try:
            module = __import__(name, fromlist=["get_yaml_loader"])
        except ImportError:
            continue
        loader = getattr(module, "get_yaml_loader", None)
        if callable(loader):
            try:
                loader()
            except TypeError:
                continue
            return module
    return None


_pure_loader: type | None = None  # OmegaConf's own loader class, once replaced


def use_libyaml_for_omegaconf() -> bool:
    """Make OmegaConf load YAML through libyaml's parser; returns whether nnexp's loader is in use.

    OmegaConf 2.3's ``get_yaml_loader`` builds a fresh loader class on PyYAML's pure-Python parser
    at each call: loading nnexp's and Hydra's 83 config files took 40 ms, against 3 ms with this.
    The loader is OmegaConf's own (its float and duplicate-key rules, its constructors) with
    libyaml's parser in front, built once. Not needed where OmegaConf's loader is libyaml's
    already (2.4). Public path: OmegaConf's loader as it is.
    """
    global _pure_loader
    if _pure_loader is not None:
        return True
    module = _omegaconf_loader_module()
    c_loader = getattr(yaml, "CSafeLoader", None)
    if c_loader is None:
        _take(LIBYAML_LOADER, PUBLIC, "PyYAML was built without libyaml")
        return False
    if module is None:
        _take(LIBYAML_LOADER, PUBLIC, "no get_yaml_loader() in omegaconf._utils or omegaconf._yaml")
        return False
    original = module.get_yaml_loader
    pure = original()
    if issubclass(pure, c_loader):
        _take(LIBYAML_LOADER, NOT_NEEDED, "OmegaConf's own loader parses with libyaml")
        return False
    # CSafeLoader first: libyaml's parser wins; OmegaConf's resolvers and constructors follow.
    loader = type("OmegaConfLibyamlLoader", (c_loader, pure), {})

    def get_yaml_loader() -> type:
        return loader

    import omegaconf

    for holder in (module, *vars(omegaconf).values()):  # also where it was imported by name
        if isinstance(holder, ModuleType) and getattr(holder, "get_yaml_loader", None) is original:
            holder.get_yaml_loader = get_yaml_loader
    _pure_loader = pure
    _take(LIBYAML_LOADER, FAST, "libyaml's parser in front of OmegaConf's loader, built once")
    return True


def omegaconf_pure_loader() -> type | None:
    """OmegaConf's own loader class, as it was before ``use_libyaml_for_omegaconf`` (for tests)."""
    if _pure_loader is not None:
        return _pure_loader
    module = _omegaconf_loader_module()
    return module.get_yaml_loader() if module else None


@functools.cache
def _omegaconf_str_representer() -> Any | None:
    try:
        from omegaconf._utils import OmegaConfDumper
    except ImportError:
        return None
    representer = getattr(OmegaConfDumper, "str_representer", None)
    return representer if callable(representer) else None


def _quotes_needed(text: str) -> bool:
    """Public fallback of OmegaConf's rule: a string that YAML would load as anything but a
    string (a bool, number, null), or that Python reads as a number (OmegaConf's loader takes
    ``1e-3`` as a float), is quoted."""
    try:
        float(text)
        return True
    except ValueError:
        pass
    try:
        return not isinstance(yaml.safe_load(text), str)
    except yaml.YAMLError:
        return False


def yaml_string_representer(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    """PyYAML representer for strings as OmegaConf's writer quotes them, so that OmegaConf.load
    reads back exactly what was saved."""
    representer = _omegaconf_str_representer()
    if representer is not None:
        _take(STRING_QUOTING, FAST, "OmegaConfDumper.str_representer")
        return representer(dumper, data)
    _take(STRING_QUOTING, PUBLIC, "no OmegaConfDumper.str_representer; nnexp's copy of its rule")
    style = "'" if data and _quotes_needed(data) else None
    return dumper.represent_scalar(yaml.resolver.BaseResolver.DEFAULT_SCALAR_TAG, data, style=style)


@functools.cache
def _composing_mode_probe() -> type | None:
    """Hydra's class whose ``get_mode(config_name, overrides)`` composes the whole config, or
    None where it reads ``hydra.mode`` without composing (1.4 takes parsed overrides) or is gone."""
    try:
        from hydra._internal.hydra import Hydra
    except ImportError:
        _take(MODE_PROBE, PUBLIC, "no hydra._internal.hydra.Hydra")
        return None
    probe = getattr(Hydra, "get_mode", None)
    if probe is None:
        _take(MODE_PROBE, PUBLIC, "no Hydra.get_mode")
        return None
    if list(inspect.signature(probe).parameters) != ["self", "config_name", "overrides"]:
        _take(MODE_PROBE, NOT_NEEDED, "Hydra reads hydra.mode from the overrides and the primary config")
        return None
    _take(MODE_PROBE, FAST, "no composition for hydra.mode under -m")
    return Hydra


@contextlib.contextmanager
def skip_mode_probe() -> Iterator[None]:
    """Before a run, Hydra 1.3 composes the whole config once only to read ``hydra.mode`` (~75 ms).
    For the caller's command the answer is known: with ``-m`` it cannot change what runs (every
    mode, or none, makes it a multirun), and without it nnexp's own configs leave the mode unset
    (``command.mode_is_unset``); the probe reports "unset" without composing. Public path: Hydra
    probes as usual."""
    hydra_class = _composing_mode_probe()
    if hydra_class is None:
        yield
        return
    probe = hydra_class.get_mode
    hydra_class.get_mode = lambda self, config_name, overrides: None
    try:
        yield
    finally:
        hydra_class.get_mode = probe


@functools.cache
def _shared_hydra_node() -> bool:
    """Whether OmegaConf can set a node without copying it (the ``no_deepcopy_set_nodes`` flag)
    and re-parent it (``_set_parent``), and ``HydraConfig`` keeps its config in ``cfg``."""
    from hydra.core.hydra_config import HydraConfig

    if not hasattr(HydraConfig.instance(), "cfg"):
        _take(HYDRA_CONFIG, PUBLIC, "HydraConfig has no cfg attribute")
        return False
    node = OmegaConf.create({"x": 1})
    holder = OmegaConf.create({})
    try:
        with flag_override(holder, "no_deepcopy_set_nodes", True):
            holder.node = node
    except Exception as error:  # an OmegaConf without the flag
        _take(HYDRA_CONFIG, PUBLIC, f"OmegaConf cannot set a node uncopied ({type(error).__name__})")
        return False
    if holder._get_node("node") is not node or not hasattr(node, "_set_parent"):
        _take(HYDRA_CONFIG, PUBLIC, "OmegaConf copies set nodes whatever the flag")
        return False
    _take(HYDRA_CONFIG, FAST, "the job's own hydra node, not a deep copy")
    return True


def set_hydra_config(config: DictConfig) -> None:
    """Point ``HydraConfig`` at a job's config, so that ``${hydra:...}`` resolves to that job.

    Hydra's ``set_config`` deep-copies the hydra node (3 ms a job). Here the singleton holds the
    job's own node, read-only and, as in Hydra's copy, parented to the job config, so
    interpolations inside it resolve the same way. Public path: ``set_config``.
    """
    from hydra.core.hydra_config import HydraConfig

    if not _shared_hydra_node():
        HydraConfig.instance().set_config(config)
        return
    OmegaConf.set_readonly(config.hydra, True)
    holder = OmegaConf.create({})
    with flag_override(holder, "no_deepcopy_set_nodes", True):
        holder.hydra = config.hydra
    holder.hydra._set_parent(config)
    HydraConfig.instance().cfg = holder


@functools.cache
def hydra_version_base() -> dict[str, str]:
    """Keyword arguments that give ``hydra.main`` and ``initialize*`` Hydra's current defaults.

    Hydra 1.4 deprecates ``version_base`` (it warns, and 1.5 removes it): omitted, it means the
    current defaults. Hydra 1.3 takes an omitted one as 1.1's defaults, so it gets "1.3"."""
    import hydra.errors

    return {} if hasattr(hydra.errors, "Hydra15MigrationWarning") else {"version_base": "1.3"}


@functools.cache
def _hydra_callbacks_class() -> type | None:
    """Hydra's ``Callbacks`` class, where it has the run and job hooks ``Hydra.run`` calls."""
    try:
        from hydra._internal.callbacks import Callbacks
    except ImportError as error:
        _take(RUN_CALLBACKS, PUBLIC, f"no hydra._internal.callbacks.Callbacks ({error})")
        return None
    hooks = ("on_run_start", "on_run_end", "on_job_start", "on_job_end")
    if not all(callable(getattr(Callbacks, hook, None)) for hook in hooks):
        _take(RUN_CALLBACKS, PUBLIC, "Hydra's Callbacks lacks a run or job hook")
        return None
    _take(RUN_CALLBACKS, FAST, "a single run's dir made without run_job's copies of the config")
    return Callbacks


def run_callbacks(config: DictConfig) -> Any | None:
    """Hydra's callbacks for a single run of ``config``, as ``Hydra.run`` makes them, so that
    ``nnexp.run`` can make the run's dir as Hydra does without ``run_job``'s three copies of the
    config (``hydra_job``). None where Hydra's ``Callbacks`` is not there as expected: the public
    path, ``Hydra.run`` itself."""
    callbacks = _hydra_callbacks_class()
    return None if callbacks is None else callbacks(config)


def keep_task_traceback(job_return: Any, error: BaseException) -> None:
    """Keep a failed task's traceback and chained causes in its ``JobReturn``, as Hydra 1.4's
    ``run_job`` does (the return pickles them, so a cluster task's failure shows the task's own
    frames in the driver); nothing where Hydra's return has no such fields (1.3)."""
    import hydra.core.utils as hydra_utils

    if not hasattr(job_return, "_remote_traceback"):
        return
    try:
        job_return._remote_traceback = hydra_utils._serialize_traceback(error.__traceback__)
        job_return._remote_exception_chain = hydra_utils._serialize_exception_chain(error)
        job_return._remote_exception_group = hydra_utils._serialize_exception_group(error)
    except Exception:  # noqa: BLE001  (as run_job: a traceback that cannot be kept leaves the error as it is)
        pass


# The packages whose callables nnexp's configs and documented options name as ``_target_``; a user
# adds their own packages through NNEXP_TRUSTED_TARGETS (comma-separated, e.g. ``mylab.*``).
TRUSTED_TARGETS = ("nnexp.*", "hydra_plugins.nnexp_launcher.*", "torch.*", "sklearn.*", "pytorch_lightning.*",
                   "lightning.*", "torchmetrics.*", "optuna.*")
TRUSTED_TARGETS_VARIABLE = "NNEXP_TRUSTED_TARGETS"


@functools.cache
def trusted_targets() -> tuple[str, ...] | None:
    """Hydra 1.4's execution whitelist for the ``_target_``s configs may name (it warns for every
    target instantiated without one, and 1.5 refuses them); None on Hydra 1.3, which has none."""
    import hydra.utils

    if not hasattr(hydra.utils, "execution_whitelist"):
        return None
    extra = [name.strip() for name in os.environ.get(TRUSTED_TARGETS_VARIABLE, "").split(",") if name.strip()]
    return (*TRUSTED_TARGETS, *extra)


def hydra_main_whitelist() -> dict[str, Any]:
    """Keyword arguments that give ``hydra.main`` the trusted targets (none on Hydra 1.3)."""
    targets = trusted_targets()
    return {} if targets is None else {"execution_whitelist": targets}


def instantiate_whitelist() -> dict[str, Any]:
    """Keyword arguments that give ``hydra.utils.instantiate`` the trusted targets, for calls
    outside ``hydra.main`` (a launcher's worker process, the Python API); none on Hydra 1.3."""
    targets = trusted_targets()
    return {} if targets is None else {"_execution_whitelist_": targets}


@contextlib.contextmanager
def targets_trusted() -> Iterator[None]:
    """The trusted targets for every ``instantiate`` in this block, Hydra's own included (its
    callbacks); nothing on Hydra 1.3."""
    targets = trusted_targets()
    if targets is None:
        yield
        return
    import hydra.utils

    with hydra.utils.execution_whitelist(targets):
        yield


def scan_lightning_callbacks_once() -> bool:
    """Make Lightning read the installed callback entry points once per process; returns whether
    the fast path is in use.

    Every ``Trainer`` asks ``importlib.metadata`` for the entry points of every installed
    distribution to find callback factories (11 ms here, and a cross-validated sweep builds a
    Trainer a fold: 0.4 s of the lecture's 36-fit grid). What is installed does not change while
    a run or sweep goes on: the entry points are listed once, and their factories are still
    called for each Trainer, as Lightning does. Public path: Lightning's scan, each time."""
    try:
        from lightning_fabric.utilities import registry
    except ImportError:
        _take(LIGHTNING_CALLBACK_SCAN, PUBLIC, "no lightning_fabric.utilities.registry")
        return False
    listed = getattr(registry, "entry_points", None)
    if getattr(listed, "nnexp_listed_once", False):
        return True
    if not callable(listed) or not callable(getattr(registry, "_load_external_callbacks", None)):
        _take(LIGHTNING_CALLBACK_SCAN, PUBLIC, "Lightning finds its callback factories another way")
        return False

    @functools.cache
    def entry_points(group: str) -> tuple:
        return tuple(listed(group=group))

    entry_points.nnexp_listed_once = True
    registry.entry_points = entry_points
    _take(LIGHTNING_CALLBACK_SCAN, FAST, "listed once per process, their factories called for each Trainer")
    return True


def compatibility_paths() -> dict[str, str]:
    """Each speed-up over Hydra's and OmegaConf's internals, and the path it takes here
    (``fast path``, ``public path`` or ``not needed``, with why), for ``nnexp --version``."""
    use_libyaml_for_omegaconf()
    yaml_string_representer(yaml.SafeDumper(None), "probe")
    _composing_mode_probe()
    _shared_hydra_node()
    _hydra_callbacks_class()
    scan_lightning_callbacks_once()
    base = hydra_version_base().get("version_base")
    targets = trusted_targets()
    trusted = ", ".join(targets) if targets else f"{NOT_NEEDED}: this Hydra instantiates any target"
    return {**_paths, "hydra version_base": f"{base!r}" if base else "omitted: Hydra's current defaults",
            "hydra execution whitelist": trusted}
