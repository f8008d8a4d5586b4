"""Load a data config once per process: a sweep's jobs share the same DataBundle."""

from __future__ import annotations

import json

from omegaconf import DictConfig, OmegaConf

from nnexp.data.bundle import DataBundle
from nnexp.factory import instantiate

_CACHE: dict[tuple, DataBundle] = {}
_SOURCES: dict[str, object] = {}  # data config -> its source (instantiating one costs ~2 ms)
_CACHE_SIZE = 4


def load_data(data_cfg: DictConfig) -> DataBundle:
    """Instantiate the data source and load it, reusing the bundle of an identical config whose
    files have not changed since (the source's ``cache_token``).

    Bundles are never modified downstream (splits index copies), so sharing them is safe.
    """
    config = json.dumps(OmegaConf.to_container(data_cfg, resolve=True), sort_keys=True, default=str)
    source = _SOURCES.get(config)
    if source is None:
        source = _SOURCES[config] = instantiate(data_cfg)
    key = (config, source.cache_token())
    if key not in _CACHE:
        _CACHE[key] = source.load()
    for cache in (_CACHE, _SOURCES):
        while len(cache) > _CACHE_SIZE:  # drop the oldest
            cache.pop(next(iter(cache)))
    return _CACHE[key]
