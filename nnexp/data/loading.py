"""Load a data config once per process: a sweep's jobs share the same DataBundle."""

from __future__ import annotations

import json

from omegaconf import DictConfig, OmegaConf

from nnexp.data.bundle import DataBundle
from nnexp.factory import instantiate

_CACHE: dict[tuple, DataBundle] = {}
_CACHE_SIZE = 4


def load_data(data_cfg: DictConfig) -> DataBundle:
    """Instantiate the data source and load it, reusing the bundle of an identical config.

    Bundles are never modified downstream (splits index copies), so sharing them is safe.
    """
    source = instantiate(data_cfg)
    key = (json.dumps(OmegaConf.to_container(data_cfg, resolve=True), sort_keys=True, default=str), source.cache_token())
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = source.load()
    return _CACHE[key]
