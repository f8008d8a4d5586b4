"""OmegaConf on libyaml loads every config exactly as OmegaConf's own loader does."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from nnexp import fast_yaml

ROOT = Path(__file__).resolve().parents[1]


def config_files() -> list[Path]:
    hydra_conf = Path(str(resources.files("hydra") / "conf"))
    return sorted((ROOT / "configs").rglob("*.yaml")) + sorted(hydra_conf.rglob("*.yaml"))


def test_every_config_loads_as_with_omegaconfs_own_loader(tmp_path):
    fast_yaml.use_libyaml()
    from omegaconf._utils import get_yaml_loader

    assert issubclass(get_yaml_loader(), yaml.CSafeLoader)
    files = config_files()
    assert len(files) > 50
    for path in files:
        text = path.read_text()
        assert yaml.load(text, Loader=get_yaml_loader()) == yaml.load(text, Loader=fast_yaml._pure_loader), path
    odd = tmp_path / "odd.yaml"
    odd.write_text("lr: 1e-3\nwhen: 2001-12-14\nsizes: [64, 32]\nname: '1.0'\n")
    assert OmegaConf.to_container(OmegaConf.load(odd)) == {"lr": 0.001, "when": "2001-12-14", "sizes": [64, 32], "name": "1.0"}


def test_duplicate_keys_are_still_an_error(tmp_path):
    fast_yaml.use_libyaml()
    path = tmp_path / "twice.yaml"
    path.write_text("alpha: 1\nalpha: 2\n")
    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate key alpha"):
        OmegaConf.load(path)
