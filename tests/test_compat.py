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


def test_the_mode_probe_is_skipped_only_inside_the_block():
    """Before a multirun, Hydra composes the whole config only to read hydra.mode; with -m nnexp
    answers "unset" without composing (the private method is read here, not patched)."""
    if not compat.KNOWN_HYDRA:
        pytest.skip("a Hydra release nnexp was not written against: Hydra probes as usual")
    from hydra._internal.hydra import Hydra

    probe = Hydra.get_mode
    with compat.skip_mode_probe():
        assert Hydra.get_mode(object(), config_name="train", overrides=["data=iris"]) is None
    assert Hydra.get_mode is probe


@pytest.mark.parametrize("fast", [True, False], ids=["fast path", "public fallback"])
def test_set_hydra_config_resolves_the_jobs_own_node(monkeypatch, fast):
    """${hydra:...} in a job's config resolves to that job after set_hydra_config, on the fast
    path and on the public one."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    if not fast:
        monkeypatch.setattr(compat, "KNOWN_HYDRA", False)  # as on a Hydra nnexp does not know
    GlobalHydra.instance().clear()
    with initialize_config_module("nnexp.configs", version_base="1.3"):
        config = compose("train", overrides=["data=iris", "hydra.job.num=7", "+probe=${hydra:job.num}"], return_hydra_config=True)
    compat.set_hydra_config(config)
    assert HydraConfig.get().job.num == 7 and config.probe == 7
