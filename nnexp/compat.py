"""The one place nnexp reaches into Hydra's and OmegaConf's private code, each time for speed.

Every entry checks that the installed version is one whose internals it was written against
(``hydra-core`` 1.3, ``omegaconf`` 2.3) and that the private name is there; otherwise it takes
the public path, which is slower and gives the same result. Nothing else in nnexp imports
``hydra._internal`` or ``omegaconf._utils``.
"""

from __future__ import annotations

import contextlib
from importlib.metadata import version
from typing import Any, Iterator

import yaml
from omegaconf import DictConfig, OmegaConf, flag_override


def _release(package: str) -> tuple[int, int]:
    try:
        major, minor = version(package).split(".")[:2]
        return int(major), int(minor)
    except Exception:  # not installed as a distribution, or an odd version string
        return (0, 0)


KNOWN_HYDRA = _release("hydra-core") == (1, 3)
KNOWN_OMEGACONF = _release("omegaconf") == (2, 3)


def _omegaconf_utils() -> Any | None:
    if not KNOWN_OMEGACONF:
        return None
    try:
        from omegaconf import _utils
    except ImportError:
        return None
    return _utils if hasattr(_utils, "get_yaml_loader") and hasattr(_utils, "OmegaConfDumper") else None


_pure_loader: type | None = None  # OmegaConf's own loader class, once replaced


def use_libyaml_for_omegaconf() -> bool:
    """Make OmegaConf load YAML through libyaml's parser; returns whether it does.

    Every config file Hydra composes, and every ``OmegaConf.load``, goes through OmegaConf's
    ``get_yaml_loader``, which builds a fresh loader class on PyYAML's pure-Python parser at each
    call: loading nnexp's and Hydra's 83 config files took 40 ms, against 3 ms with this. The
    loader is OmegaConf's own (its float and duplicate-key rules, its constructors) with
    libyaml's parser in front, built once. Public fallback: OmegaConf's loader as it is.
    """
    global _pure_loader
    utils = _omegaconf_utils()
    if utils is None or getattr(yaml, "CSafeLoader", None) is None:
        return False
    if _pure_loader is not None:
        return True
    from omegaconf import basecontainer

    original = utils.get_yaml_loader
    _pure_loader = original()
    # CSafeLoader first: libyaml's parser wins; OmegaConf's resolvers and constructors follow.
    loader = type("OmegaConfLibyamlLoader", (yaml.CSafeLoader, _pure_loader), {})

    def get_yaml_loader() -> type:
        return loader

    utils.get_yaml_loader = get_yaml_loader
    if getattr(basecontainer, "get_yaml_loader", None) is original:  # imported by name there
        basecontainer.get_yaml_loader = get_yaml_loader
    return True


def omegaconf_pure_loader() -> type | None:
    """OmegaConf's own loader class, as it was before ``use_libyaml_for_omegaconf`` (for tests)."""
    if _pure_loader is not None:
        return _pure_loader
    utils = _omegaconf_utils()
    return utils.get_yaml_loader() if utils else None


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
    utils = _omegaconf_utils()
    if utils is not None:
        return utils.OmegaConfDumper.str_representer(dumper, data)
    style = "'" if data and _quotes_needed(data) else None
    return dumper.represent_scalar(yaml.resolver.BaseResolver.DEFAULT_SCALAR_TAG, data, style=style)


@contextlib.contextmanager
def skip_mode_probe() -> Iterator[None]:
    """Before a run, Hydra composes the whole config once only to read ``hydra.mode`` (~75 ms).
    With ``-m`` the answer cannot change what runs (every mode, or none, makes it a multirun), so
    the probe reports "unset" without composing. Public fallback: Hydra probes as usual."""
    hydra_class = None
    if KNOWN_HYDRA:
        try:
            from hydra._internal.hydra import Hydra as hydra_class
        except ImportError:
            hydra_class = None
    if hydra_class is None or not hasattr(hydra_class, "get_mode"):
        yield
        return
    probe = hydra_class.get_mode
    hydra_class.get_mode = lambda self, config_name, overrides: None
    try:
        yield
    finally:
        hydra_class.get_mode = probe


def set_hydra_config(config: DictConfig) -> None:
    """Point ``HydraConfig`` at a job's config, so that ``${hydra:...}`` resolves to that job.

    Hydra's ``set_config`` deep-copies the hydra node (3 ms a job). Here the singleton holds the
    job's own node, read-only and, as in Hydra's copy, parented to the job config, so
    interpolations inside it resolve the same way. Public fallback: ``set_config``.
    """
    from hydra.core.hydra_config import HydraConfig

    if not (KNOWN_HYDRA and KNOWN_OMEGACONF) or not hasattr(config.hydra, "_set_parent"):
        HydraConfig.instance().set_config(config)
        return
    OmegaConf.set_readonly(config.hydra, True)
    holder = OmegaConf.create({})
    with flag_override(holder, "no_deepcopy_set_nodes", True):
        holder.hydra = config.hydra
    holder.hydra._set_parent(config)
    HydraConfig.instance().cfg = holder
