"""Hydra's own plugin test suites (``hydra.test_utils.launcher_common_tests``), run against every
nnexp launcher and nnexp's sweeper.

Harness adaptations, and why:
- nnexp's launcher and sweeper configs live in nnexp's config package, so each test app gets
  ``hydra.searchpath=[pkg://nnexp.configs]`` (on the command line, or in its primary config);
- an editable install (``pip install -e``) hides ``hydra_plugins.nnexp_launcher`` from Hydra's
  plugin scan, so the plugins are registered explicitly: before each in-process test, and by a
  one-line wrapper around the integration tests' ``python task.py`` (a regular install, as in CI,
  is found by the scan as well).
"""

from __future__ import annotations

import sys

import pytest
from hydra.test_utils.launcher_common_tests import BatchedSweeperTestSuite, IntegrationTestSuite, LauncherTestSuite

pytestmark = pytest.mark.hydra  # also run on Hydra's latest pre-release in CI

SEARCH_PATH = "hydra.searchpath=[pkg://nnexp.configs]"
LAUNCHERS = ["nnexp", "nnexp_batched"]


@pytest.fixture(autouse=True)
def nnexp_plugins(hydra_restore_singletons):
    from nnexp.hydra_integration.app import register_plugins

    register_plugins()


@pytest.mark.parametrize("launcher_name, overrides", [
    *[(name, [SEARCH_PATH]) for name in LAUNCHERS],
    *[(name, [SEARCH_PATH, "hydra/sweeper=nnexp"]) for name in LAUNCHERS],
], ids=[f"{name}+{sweeper}" for sweeper in ("basic sweeper", "nnexp sweeper") for name in LAUNCHERS])
class TestNnexpLaunchers(LauncherTestSuite):
    pass


@pytest.mark.parametrize("launcher_name, overrides", [
    (name, [SEARCH_PATH, "hydra/sweeper=nnexp", "hydra.sweeper.max_batch_size=2"]) for name in LAUNCHERS
])
class TestNnexpSweeperBatches(BatchedSweeperTestSuite):
    pass


def launcher_app_config(launcher: str, sweeper: str) -> dict:
    return {
        "defaults": [{"override hydra/launcher": launcher}, {"override hydra/sweeper": sweeper}, "_self_"],
        "hydra": {"searchpath": ["pkg://nnexp.configs"]},
    }


# As a separate program (a Python start each: ~1 s a test), the in-process launcher with nnexp's
# sweeper; the batched launcher runs another app's jobs through the same code (nothing to stack).
INTEGRATION = [("nnexp", "nnexp")]


@pytest.mark.parametrize("task_launcher_cfg, extra_flags", [
    (launcher_app_config(launcher, sweeper), ["-m"]) for launcher, sweeper in INTEGRATION
], ids=[f"{launcher}+{sweeper}" for launcher, sweeper in INTEGRATION])
class TestNnexpLaunchersIntegration(IntegrationTestSuite):
    def generate_custom_cmd(self):
        def command(cmd: list[str], filename: str) -> list[str]:
            python, task_file, *args = cmd
            run = ("import runpy, sys; from nnexp.hydra_integration.app import register_plugins; register_plugins(); "
                   "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")
            return [python, "-c", run, task_file, *args]

        return command


def test_importing_nnexp_leaves_hydras_version_base_alone():
    """hydra.main sets Hydra's process-wide version base; nnexp applies it only when it runs."""
    import subprocess

    script = ("import nnexp.cli, hydra_plugins.nnexp_launcher\n"
              "from hydra.version import VersionBase\n"
              "print(type(VersionBase.instance().getbase()).__name__)")
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert output.strip() != "Version"  # Hydra's "unspecified" marker (an object, or a string in Hydra 1.4)
