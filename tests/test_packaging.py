"""The wheel ships every subpackage and the whole config tree."""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the packaging is the same on 3.10
ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_lists_every_subpackage():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    mapped = {folder: package for package, folder in config["tool"]["setuptools"]["package-dir"].items()}
    found = {
        mapped.get(path.parent.relative_to(ROOT).as_posix(), ".".join(path.parent.relative_to(ROOT).parts))
        for path in (ROOT / "nnexp").rglob("__init__.py")
    } | {"nnexp.configs"}
    assert listed == found


def test_package_data_globs_cover_every_config_file():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["nnexp.configs"]
    configs = ROOT / "configs"
    yaml_files = {path.relative_to(configs) for path in configs.rglob("*.yaml")}
    covered = {path.relative_to(configs) for pattern in patterns for path in configs.glob(pattern)}
    assert yaml_files and yaml_files == covered


def _release(distribution: str) -> tuple[int, int]:
    from importlib.metadata import version

    major, minor = version(distribution).split(".")[:2]
    return int(major), int(minor)


def test_the_joblib_launcher_is_the_release_made_for_the_installed_hydra():
    """hydra-joblib-launcher 1.4 needs Hydra 1.4; Hydra 1.3's newest plugin is 1.2 (pyproject allows both)."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    assert (_release("hydra-joblib-launcher") >= (1, 4)) == (_release("hydra-core") >= (1, 4))
