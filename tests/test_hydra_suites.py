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

pytestmark = pytest.mark.hydra  # also run on the oldest releases in CI

SEARCH_PATH = "hydra.searchpath=[pkg://nnexp.configs]"
LAUNCHERS = ["nnexp", "nnexp_batched"]
# The cluster launcher as launcher=submitit_local runs it: each chunk of jobs in a local task process.
CLUSTER = ("nnexp_cluster", ["hydra.launcher.cluster=local", "hydra.launcher.poll_s=0.1"])


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


@pytest.mark.server  # local task processes, a Python start each
@pytest.mark.parametrize("launcher_name, overrides", [(CLUSTER[0], [SEARCH_PATH, "hydra/sweeper=nnexp", *CLUSTER[1]])],
                         ids=["submitit_local+nnexp sweeper"])
class TestClusterLauncher(LauncherTestSuite):
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
INTEGRATION = [
    pytest.param(launcher_app_config("nnexp", "nnexp"), ["-m"], id="nnexp+nnexp"),
    pytest.param(launcher_app_config("nnexp_cluster", "nnexp"), ["-m", *CLUSTER[1]], id="submitit_local+nnexp",
                 marks=pytest.mark.server),
]


@pytest.mark.parametrize("task_launcher_cfg, extra_flags", INTEGRATION)
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

    script = ("import nnexp.cli, nnexp.command, hydra_plugins.nnexp_launcher\n"
              "from hydra.version import VersionBase\n"
              "print(type(VersionBase.instance().getbase()).__name__)")
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert output.strip() != "Version"  # Hydra's "unspecified" marker (an object, or a string in Hydra 1.4)


def test_hydras_plugin_scan_finds_every_nnexp_launcher_and_sweeper(tmp_path):
    """As a regular install lays it out (``hydra_plugins/nnexp_launcher``), Hydra's own scan finds
    every nnexp plugin, with no registration by nnexp."""
    import subprocess
    from pathlib import Path

    import nnexp

    (tmp_path / "hydra_plugins").mkdir()
    (tmp_path / "hydra_plugins" / "nnexp_launcher").symlink_to(Path(nnexp.__file__).parent / "hydra_plugin")
    script = ("from hydra.core.plugins import Plugins\n"
              "from hydra.plugins.launcher import Launcher\n"
              "from hydra.plugins.sweeper import Sweeper\n"
              "for kind in (Launcher, Sweeper):\n"
              "    print(' '.join(sorted(c.__name__ for c in Plugins.instance().discover(kind) if 'nnexp' in c.__module__)))")
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                           env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)}).stdout.splitlines()
    assert found == ["BatchedLauncher ClusterLauncher InProcessLauncher", "InProcessSweeper OptunaSweeper"]
