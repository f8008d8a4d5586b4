"""Hydra instantiation that lets nnexp's own errors through, and checked ``_partial_`` factory calls."""

from __future__ import annotations

import copy
import re
from functools import partial
from typing import Any, Callable

import hydra.utils
from hydra.errors import InstantiationException

from nnexp.compat import TRUSTED_TARGETS_VARIABLE, instantiate_whitelist
from nnexp.errors import NnexpError


def instantiate(node: Any, *args, **kwargs) -> Any:
    """``hydra.utils.instantiate`` with plain Python arguments; an NnexpError raised by the
    constructor comes out unwrapped.

    ``_convert_="all"`` matters for speed: an optimiser given OmegaConf's ListConfig as ``betas``
    reads it through OmegaConf on every step (20% of a small net's epoch).
    """
    kwargs.setdefault("_convert_", "all")
    for name, value in instantiate_whitelist().items():  # Hydra 1.4's trusted targets, also where no hydra.main ran
        kwargs.setdefault(name, value)
    try:
        return shippable(hydra.utils.instantiate(node, *args, **kwargs))
    except InstantiationException as error:
        if isinstance(error.__cause__, NnexpError):
            raise error.__cause__ from None
        raise NnexpError(instantiation_line(error)) from error.__cause__  # callers may judge the cause


class ShippableFactory(partial):
    """A ``_partial_`` factory from Hydra 1.4, which checks each call against its execution policy
    (in this process it calls through Hydra's factory) but refuses to be pickled: a copy sent to
    another process of this run (DDP's spawned workers) is a plain ``functools.partial`` of the
    same target, which Hydra authorized when it built the factory."""

    def __new__(cls, deferred: partial):
        factory = super().__new__(cls, deferred.func, *deferred.args, **(deferred.keywords or {}))
        factory.deferred = deferred
        return factory

    def __call__(self, *args, **kwargs):
        return self.deferred(*args, **kwargs)

    def __reduce__(self):
        return plain_partial, (self.func, self.args, dict(self.keywords))

    def __copy__(self) -> "ShippableFactory":
        return ShippableFactory(copy.copy(self.deferred))

    def __deepcopy__(self, memo: dict) -> "ShippableFactory":
        return ShippableFactory(copy.deepcopy(self.deferred, memo))


def plain_partial(func: Callable, args: tuple, keywords: dict) -> partial:
    """``functools.partial(func, *args, **keywords)`` (what a ``ShippableFactory`` unpickles to)."""
    return partial(func, *args, **keywords)


def shippable(value: Any) -> Any:
    """``value``, or, for a Hydra factory that cannot be pickled (Hydra 1.4), its ``ShippableFactory``."""
    if isinstance(value, partial) and type(value) not in (partial, ShippableFactory):
        return ShippableFactory(value)
    return value


def instantiation_line(error: InstantiationException) -> str:
    """Hydra's message for a ``_target_`` that cannot be imported or called, as one line naming the key."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    key = re.search(r"full_key: ([\w.]+)", text)
    key = key.group(1) if key else "the config"
    text = re.sub(r",? ?set env var HYDRA_FULL_ERROR=1 to see chained exception\.?|full_key: [\w.]+", "", text).strip()
    cause = error.__cause__
    if cause is not None and str(cause) not in text:
        text += f" ({type(cause).__name__}: {' '.join(str(cause).split())})"
    fix = "give a _target_ that can be imported" if "Error locating target" in text else f"fix the {key}.* settings"
    if "execution whitelist" in text:  # Hydra 1.4 instantiates only targets nnexp trusts
        text = text.split(" Pass _execution_whitelist_")[0].rstrip(".")  # Hydra's advice is for the program's author
        fix = f"name a target in {key} from nnexp, torch, scikit-learn, Lightning or Optuna, or add its package to {TRUSTED_TARGETS_VARIABLE} (e.g. mylab.*)"
    return f"{key}: {text}; {fix}"


def target_name(factory: Callable) -> str:
    func = factory.func if isinstance(factory, partial) else factory
    return f"{getattr(func, '__module__', '')}.{getattr(func, '__qualname__', repr(func))}".lstrip(".")


def call_factory(key: str, factory: Callable, *args, **kwargs) -> Any:
    """Call a ``_partial_`` factory; bad arguments become one line naming the config key."""
    try:
        return factory(*args, **kwargs)
    except (TypeError, ValueError) as error:
        raise NnexpError(f"{key} ({target_name(factory)}): {error}; fix the {key}.* settings") from None
