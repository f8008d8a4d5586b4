"""Override helpers on Hydra's public override parser: value overrides applied to a composed
config, and ``hydra.job.override_dirname``."""

from __future__ import annotations

import re
from typing import Sequence

from hydra.core.override_parser.types import Override
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException


def apply_value_overrides(overrides: Sequence[Override], config: DictConfig) -> None:
    """Set each plain ``key=value`` override on ``config`` (no ``+``, ``~`` or group choices),
    with the errors Hydra's composition gives for them."""
    for override in overrides:
        try:
            OmegaConf.update(config, override.key_or_group, override.value(), merge=True)
        except (ConfigAttributeError, ConfigKeyError) as error:
            raise ConfigCompositionException(
                f"Could not override '{override.key_or_group}'.\nTo append to your config use +{override.input_line}"
            ) from error
        except OmegaConfBaseException as error:
            raise ConfigCompositionException(f"Error merging override {override.input_line}") from error


def override_dirname(overrides: Sequence[Override], kv_sep: str, item_sep: str, exclude_keys: Sequence[str]) -> str:
    """``hydra.job.override_dirname``: the job's overrides, sorted, joined by ``item_sep``, with
    ``=`` written as ``kv_sep``; keys in ``exclude_keys`` left out (Hydra's documented format)."""
    lines = sorted(o.input_line for o in overrides if o.key_or_group not in exclude_keys)
    return re.sub("=", kv_sep, item_sep.join(lines))


def shown_overrides(overrides) -> list[str]:
    """A job's overrides as its log line shows them: Hydra's filter (no ``hydra.`` keys), and no
    ``trial=`` link of an Optuna job, which only says where the job reports its scores."""
    from hydra.core.utils import filter_overrides

    return [line for line in filter_overrides(list(overrides)) if not line.startswith("trial=")]
