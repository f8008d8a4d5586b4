"""nnexp.compat: its fast paths over Hydra's and OmegaConf's private code give what the public paths give."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from nnexp import compat

pytestmark = pytest.mark.hydra  # also run on Hydra's latest pre-release in CI

ROOT = Path(__file__).resolve().parents[1]


def config_files() -> list[Path]:
    hydra_conf = Path(str(resources.files("hydra") / "conf"))
    return sorted((ROOT / "configs").rglob("*.yaml")) + sorted(hydra_conf.rglob("*.yaml"))


def test_every_config_loads_as_with_omegaconfs_own_loader(tmp_path):
    if not compat.KNOWN_OMEGACONF:
        pytest.skip("an omegaconf release nnexp was not written against: its own loader is used as it is")
    assert compat.use_libyaml_for_omegaconf()  # the pinned versions take the fast path
    pure = compat.omegaconf_pure_loader()
    files = config_files()
    assert len(files) > 50
    for path in files:
        expected = yaml.load(path.read_text(), Loader=pure)
        loaded = OmegaConf.load(path)
        assert OmegaConf.to_container(loaded) == OmegaConf.to_container(OmegaConf.create(expected or {})), path  # empty: {}
    odd = tmp_path / "odd.yaml"
    odd.write_text("lr: 1e-3\nwhen: 2001-12-14\nsizes: [64, 32]\nname: '1.0'\n")
    assert OmegaConf.to_container(OmegaConf.load(odd)) == {"lr": 0.001, "when": "2001-12-14", "sizes": [64, 32], "name": "1.0"}


def test_duplicate_keys_are_still_an_error(tmp_path):
    compat.use_libyaml_for_omegaconf()
    path = tmp_path / "twice.yaml"
    path.write_text("alpha: 1\nalpha: 2\n")
    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate key alpha"):
        OmegaConf.load(path)


STRINGS = ["1.0", "1e-3", "true", "no", "null", "~", "12", "0x1F", "relu", "a b", "", "2001-12-14", "[1, 2]", "${x}"]


@pytest.mark.parametrize("fast", [True, False], ids=["omegaconf", "public fallback"])
def test_saved_strings_load_back_as_the_same_strings(tmp_path, monkeypatch, fast):
    """Strings that YAML would read as numbers or bools are quoted, by either path."""
    from nnexp.results import yaml_text

    if not fast:
        monkeypatch.setattr(compat, "KNOWN_OMEGACONF", False)  # as on an omegaconf nnexp does not know
    path = tmp_path / "strings.yaml"
    path.write_text(yaml_text({f"k{i}": text for i, text in enumerate(STRINGS)}))
    loaded = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    assert loaded == {f"k{i}": text for i, text in enumerate(STRINGS)}
