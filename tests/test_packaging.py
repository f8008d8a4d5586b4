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
    # configs/' folders too: setuptools warns at every install about importable folders it was not told of
    found |= {".".join(("nnexp.configs", *folder.relative_to(ROOT / "configs").parts))
              for folder in (ROOT / "configs").rglob("*") if folder.is_dir() and folder.name != "__pycache__"}
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


def _imported_top_level_names() -> dict[str, str]:
    """Every top-level module nnexp/ imports by name (at module level or inside functions),
    outside the standard library and nnexp itself, with one file that imports it."""
    import ast
    import sys

    names: dict[str, str] = {}
    for path in sorted((ROOT / "nnexp").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("nnexp", "hydra_plugins", "__future__"):
                    names.setdefault(top, path.relative_to(ROOT).as_posix())
    return names


def _declared_distributions() -> set[str]:
    """The distributions pyproject.toml requires, with its optional dependencies (normalised names)."""
    import re

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    return {re.match(r"\s*([A-Za-z0-9_.\-]+)", r).group(1).lower().replace("_", "-") for r in requirements}


def test_every_package_nnexp_imports_is_a_declared_requirement():
    """A package imported directly must be required directly, not arrive as another's dependency."""
    from importlib.metadata import packages_distributions

    providers = packages_distributions()
    declared = _declared_distributions()
    imported = _imported_top_level_names()
    assert {"torch", "hydra", "omegaconf", "yaml"} <= set(imported)  # the scan sees imports at all
    undeclared = {
        name: (where, providers.get(name))
        for name, where in imported.items()
        if not declared & {d.lower().replace("_", "-") for d in providers.get(name, [name])}
    }
    assert not undeclared, f"imported but not in pyproject.toml (module: (file, installed by)): {undeclared}"


def test_every_required_package_has_a_lower_bound_ci_tests():
    """CI's oldest-releases run pins each requirement to its lower bound (.ci/lowest.py)."""
    import re

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    unbounded = [r for r in requirements if not r.startswith("nnexp") and not re.search(r">=\s*[0-9]", r)]
    assert not unbounded
