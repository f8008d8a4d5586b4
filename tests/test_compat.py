"""nnexp.compat: its fast paths over Hydra's and OmegaConf's private code give what the public paths give."""

from __future__ import annotations

import inspect
import logging
import warnings
from importlib import resources
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from nnexp import compat

pytestmark = pytest.mark.hydra  # also run on the oldest releases in CI

ROOT = Path(__file__).resolve().parents[1]


def config_files() -> list[Path]:
    hydra_conf = Path(str(resources.files("hydra") / "conf"))
    return sorted((ROOT / "configs").rglob("*.yaml")) + sorted(hydra_conf.rglob("*.yaml"))


def test_every_config_loads_as_with_omegaconfs_own_loader(tmp_path):
    fast = compat.use_libyaml_for_omegaconf()
    pure = compat.omegaconf_pure_loader()
    assert pure is not None  # OmegaConf 2.3 and 2.4 both have a get_yaml_loader() to compare with
    assert fast == (not issubclass(pure, yaml.CSafeLoader))  # not needed only where OmegaConf uses libyaml
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
        monkeypatch.setattr(compat, "_omegaconf_str_representer", lambda: None)  # as on an OmegaConf without it
    path = tmp_path / "strings.yaml"
    path.write_text(yaml_text({f"k{i}": text for i, text in enumerate(STRINGS)}))
    loaded = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    assert loaded == {f"k{i}": text for i, text in enumerate(STRINGS)}


def test_the_mode_probe_is_skipped_only_inside_the_block():
    """Before a multirun, Hydra composes the whole config only to read hydra.mode; with -m nnexp
    answers "unset" without composing (the private method is read here, not patched)."""
    from hydra._internal.hydra import Hydra

    if compat._composing_mode_probe() is None:
        assert "parsed_overrides" in inspect.signature(Hydra.get_mode).parameters  # 1.4: no composition to skip
        assert compat.compatibility_paths()[compat.MODE_PROBE].startswith(compat.NOT_NEEDED)
        pytest.skip("this Hydra reads hydra.mode without composing: the speed-up is left out")

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
        monkeypatch.setattr(compat, "_shared_hydra_node", lambda: False)  # as on an OmegaConf without the flag
    GlobalHydra.instance().clear()
    with initialize_config_module("nnexp.configs", **compat.hydra_version_base()):
        config = compose("train", overrides=["data=iris", "hydra.job.num=7", "+probe=${hydra:job.num}"], return_hydra_config=True)
    compat.set_hydra_config(config)
    assert HydraConfig.get().job.num == 7 and config.probe == 7


def test_the_hydra_job_config_takes_the_fast_path_on_both_supported_omegaconfs():
    assert compat._shared_hydra_node()  # OmegaConf 2.3 and 2.4 both set nodes uncopied under the flag


def test_compatibility_paths_name_every_speed_up_and_its_path():
    paths = compat.compatibility_paths()
    assert set(paths) == {compat.LIBYAML_LOADER, compat.STRING_QUOTING, compat.MODE_PROBE, compat.HYDRA_CONFIG,
                          compat.LIGHTNING_CALLBACK_SCAN, compat.RUN_CALLBACKS, "hydra version_base", "hydra execution whitelist"}
    for name in (compat.LIBYAML_LOADER, compat.STRING_QUOTING, compat.MODE_PROBE, compat.HYDRA_CONFIG,
                 compat.LIGHTNING_CALLBACK_SCAN, compat.RUN_CALLBACKS):
        assert paths[name].split(":")[0] in (compat.FAST, compat.PUBLIC, compat.NOT_NEEDED), name


def test_a_speed_up_that_cannot_apply_says_so_once_at_debug_level(monkeypatch, caplog):
    monkeypatch.setattr(compat, "_paths", {})
    monkeypatch.setattr(compat, "_omegaconf_str_representer", lambda: None)
    from nnexp.results import yaml_text

    with caplog.at_level(logging.DEBUG, logger="nnexp.compat"):
        yaml_text({"a": "1.0", "b": "relu"})
        yaml_text({"c": "true"})
    said = [record for record in caplog.records if compat.STRING_QUOTING in record.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.DEBUG and compat.PUBLIC in said[0].getMessage()


def test_the_version_base_gives_hydras_current_defaults_without_a_deprecation_warning():
    """Hydra 1.4 deprecates version_base (omitted, it is the current defaults); 1.3 needs "1.3"."""
    import hydra
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Hydra 1.3's "version_base not specified", 1.4's migration warning
        with initialize_config_module("nnexp.configs", **compat.hydra_version_base()):
            compose("train", overrides=["data=iris"])
    from hydra.version import getbase

    assert str(getbase()) == ".".join(hydra.__version__.split(".")[:2])


def config_targets() -> set[str]:
    targets = set()
    for path in sorted((ROOT / "configs").rglob("*.yaml")):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith("_target_:"):
                targets.add(stripped.split(":", 1)[1].split("#")[0].strip())
    return targets


def test_every_target_nnexps_configs_name_is_trusted_on_hydra_14_and_none_is_asked_of_13():
    targets = compat.trusted_targets()
    if targets is None:  # Hydra 1.3 has no execution whitelist: nothing is passed to it
        assert compat.hydra_main_whitelist() == {} and compat.instantiate_whitelist() == {}
        return
    assert all(pattern.endswith(".*") for pattern in targets)
    named = config_targets()
    assert {"nnexp.models.mlp.MLP", "torch.optim.Adam", "sklearn.datasets.make_moons", "pytorch_lightning.Trainer"} <= named
    untrusted = [t for t in named if not any(t.startswith(p[:-1]) for p in targets)]
    assert untrusted == []


def test_instantiating_nnexps_default_config_raises_no_hydra_whitelist_warning():
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from nnexp.factory import instantiate

    GlobalHydra.instance().clear()
    with initialize_config_module("nnexp.configs", **compat.hydra_version_base()):
        cfg = compose("train", overrides=["data=moons"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Hydra 1.4 warns for each target instantiated with no whitelist
        assert instantiate(cfg.model) is not None and instantiate(cfg.stopping) is not None


def test_an_untrusted_target_on_hydra_14_is_one_line_naming_the_variable_that_trusts_it(monkeypatch):
    if compat.trusted_targets() is None:
        pytest.skip("Hydra 1.3 has no execution whitelist")
    from nnexp.errors import NnexpError
    from nnexp.factory import instantiate

    with pytest.raises(NnexpError) as refused:
        instantiate(OmegaConf.create({"data": {"_target_": "collections.OrderedDict"}}).data)
    line = str(refused.value)
    assert "\n" not in line and "collections.OrderedDict" in line and compat.TRUSTED_TARGETS_VARIABLE in line
    monkeypatch.setenv(compat.TRUSTED_TARGETS_VARIABLE, "collections.*")
    compat.trusted_targets.cache_clear()
    try:
        assert instantiate(OmegaConf.create({"_target_": "collections.OrderedDict"})) == {}
    finally:
        compat.trusted_targets.cache_clear()


def test_a_failed_jobs_return_keeps_its_tasks_frames_through_a_pickle_on_hydra_14():
    """As Hydra 1.4's run_job: a cluster task's failure reaches the driver with the task's frames."""
    import pickle
    import traceback

    from hydra.core.utils import JobReturn, JobStatus

    def failing_task():
        raise RuntimeError("the task failed")

    returned = JobReturn(overrides=[])
    try:
        failing_task()
    except RuntimeError as error:
        returned.return_value, returned.status = error, JobStatus.FAILED
        compat.keep_task_traceback(returned, error)
    if not hasattr(returned, "_remote_traceback"):  # Hydra 1.3: nothing to keep it in
        return
    with pytest.raises(RuntimeError, match="the task failed") as raised:
        pickle.loads(pickle.dumps(returned)).return_value
    assert "failing_task" in [frame.name for frame in traceback.extract_tb(raised.value.__traceback__)]


def test_factories_cross_to_ddp_workers_as_the_same_partial_on_both_hydras():
    """Hydra 1.4's _partial_ factories refuse pickling; DDP's spawned workers get the module pickled."""
    import copy
    import pickle
    from functools import partial

    import torch

    from nnexp.factory import instantiate

    factory = instantiate(OmegaConf.create({"_target_": "nnexp.training.optimizers.SGD", "_partial_": True, "lr": 0.1}))
    shipped = pickle.loads(pickle.dumps(factory))
    assert isinstance(factory, partial) and isinstance(shipped, partial)
    assert (shipped.func, shipped.args, shipped.keywords) == (factory.func, factory.args, factory.keywords)
    parameters = [torch.nn.Parameter(torch.zeros(2))]
    for made in (factory(parameters), shipped(parameters), copy.deepcopy(factory)(parameters)):
        assert type(made) is factory.func and made.defaults["lr"] == 0.1


def test_lightning_lists_its_callback_entry_points_once_and_still_calls_each_factory(monkeypatch):
    from lightning_fabric.utilities import registry

    made, listed = [], []

    class Factory:  # an installed package's entry point: a factory of callbacks
        name = "probe"

        def load(self):
            return lambda: made.append(object()) or [made[-1]]

    monkeypatch.setattr(registry, "entry_points", lambda group: listed.append(group) or [Factory()])
    assert compat.scan_lightning_callbacks_once() and compat.scan_lightning_callbacks_once()  # once is enough
    first, second = (registry._load_external_callbacks("pytorch_lightning.callbacks_factory") for _ in range(2))
    assert listed == ["pytorch_lightning.callbacks_factory"]  # listed once
    assert first == [made[0]] and second == [made[1]] and made[0] is not made[1]  # a fresh callback each Trainer


def test_lightnings_scan_takes_the_public_path_where_it_finds_factories_another_way(monkeypatch):
    from lightning_fabric.utilities import registry

    monkeypatch.delattr(registry, "entry_points")
    monkeypatch.setattr(compat, "_paths", {})
    assert not compat.scan_lightning_callbacks_once()
    assert compat.compatibility_paths()[compat.LIGHTNING_CALLBACK_SCAN].startswith(compat.PUBLIC)


def test_a_single_run_composes_its_config_once(tmp_path, monkeypatch):
    """Hydra 1.3 composes the whole config once more only to probe hydra.mode (1.4 reads it
    without composing): a single nnexp run composes once on both."""
    import sys

    from hydra._internal.hydra import Hydra
    from hydra.core.global_hydra import GlobalHydra

    from nnexp import cli

    composed = []
    compose_config = Hydra.compose_config
    monkeypatch.setattr(Hydra, "compose_config", lambda self, *args, **kwargs: composed.append(1) or compose_config(self, *args, **kwargs))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["nnexp", "data=moons", "mode=validate", "quiet=true", "plots=false", "logger=none"])
    GlobalHydra.instance().clear()
    cli.main()
    assert len(composed) == 1
