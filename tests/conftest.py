"""Shared fixtures: compose nnexp's config in-process and run it on small data."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # read when a BLAS loads (scipy's may load later); see below

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import threadpoolctl  # noqa: E402
from hydra import compose, initialize_config_module  # noqa: E402
from hydra.core.global_hydra import GlobalHydra  # noqa: E402

from nnexp.compat import hydra_version_base, use_libyaml_for_omegaconf  # noqa: E402

# Process-wide set-up, once: OmegaConf reads the configs through libyaml, as nnexp's entry points
# make it (the tests compose hundreds of configs). And, unlike a user's process, BLAS runs on one
# thread, in the tests' subprocesses too: pytest's two workers share two cores, and OpenBLAS
# threads spinning against the other worker's made L-BFGS tests several times slower. Comparisons
# with scikit-learn still hold: both run in one process, on the same threads.
use_libyaml_for_omegaconf()
threadpoolctl.threadpool_limits(limits=1, user_api="blas")  # the BLAS loaded already (numpy's)

# No figures unless a test asks for them (plots=true): drawing a run's four PNGs took 1-4 s of
# each in-process run, more than the run itself on the small data sets.
QUIET = ["quiet=true", "logger=none", "plots=false"]
FAST = [*QUIET, "trainer.max_epochs=3"]


@pytest.fixture(scope="session", autouse=True)
def hydra_plugins_scanned():
    """Hydra's plugin scan, once, before any test saves Hydra's state: the scan registers the
    core plugins' configs (hydra/sweeper/basic ...), and Hydra 1.4 does not import a module twice."""
    from hydra.core.plugins import Plugins

    Plugins.instance()


def stored_config_nodes(repo: dict) -> list:
    """Every ConfigNode in ConfigStore's repo (a tree of dicts)."""
    return [node for value in repo.values()
            for node in (stored_config_nodes(value) if isinstance(value, dict) else [value])]


@pytest.fixture(autouse=True)
def hydra_state(request, hydra_plugins_scanned):
    """Each test leaves Hydra's process-wide state (version base, GlobalHydra, plugins, config
    store, OmegaConf's resolvers) as it found it: composing with a version base must not change
    what a later test (Hydra's own suites included) gets by default.

    As Hydra's ``hydra_restore_singletons`` does, but that fixture deep-copies every stored config
    node twice and rescans the plugins around each test: about 18 ms a test, 1600 tests here
    (test_pairings' 481 cases took 19.5 s with it, 9.7 s without; their bodies, 1 s). Here the stored nodes are shared
    with the saved state, not copied: ConfigStore replaces a node on ``store`` and hands out
    copies on ``load``, so none is changed in place; the rest is copied as Hydra copies it.
    Tests that use Hydra's fixture (its own suites) get only Hydra's: on Hydra 1.3 its plugin rescan
    re-executes plugin modules, and their config classes must then be the ones the store holds."""
    if "hydra_restore_singletons" in request.fixturenames:
        yield
        return
    from copy import deepcopy

    from hydra.core.config_store import ConfigStore
    from hydra.core.singleton import Singleton
    from omegaconf.basecontainer import BaseContainer

    shared = {id(node): node for node in stored_config_nodes(ConfigStore.instance().repo)}
    instances, resolvers = deepcopy(Singleton._instances, shared), deepcopy(BaseContainer._resolvers)
    yield
    Singleton._instances, BaseContainer._resolvers = instances, resolvers


@pytest.fixture(autouse=True)
def python_sigint_handler():
    """Each test starts and ends with Python's own SIGINT handler, as a user's process has it: a
    Ctrl-C raises KeyboardInterrupt, and subprocesses inherit a SIGINT that is not ignored.
    Lightning sets SIG_IGN once it has caught a Ctrl-C in a fit (and Lightning's distributed
    teardown resets it to SIG_DFL); left so in a worker, its later subprocesses never saw their
    Ctrl-C, and test_faults' Ctrl-C tests failed or passed by what had run before them."""
    import signal

    def reset() -> None:
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    reset()
    yield
    reset()


from hydra.version import VersionBase  # noqa: E402  (read before any test module composes a config)

HYDRA_VERSION_BASE_AT_START = VersionBase.instance().version_base


@pytest.fixture(autouse=True)
def hydra_version_base_as_at_start():
    """Each test starts with Hydra's version base as it was before collection: initialize_config_module
    and hydra.main set it process-wide and leave it set (the bad-value table composes configs while
    it is collected), and Hydra's own launcher suite takes its chdir default from it."""
    VersionBase.instance().version_base = HYDRA_VERSION_BASE_AT_START
    yield


@pytest.fixture
def compose_cfg(tmp_path):
    """compose_cfg(*overrides) -> the composed config, writing into a fresh run dir."""

    def _compose(*overrides: str, fast: bool = True):
        GlobalHydra.instance().clear()
        with initialize_config_module("nnexp.configs", **hydra_version_base()):
            return compose(
                "train", overrides=[f"paths.output_dir={tmp_path / 'run'}", *(FAST if fast else QUIET), *overrides]
            )

    return _compose


@pytest.fixture
def run_nnexp(compose_cfg, tmp_path):
    """run_nnexp(*overrides) -> metrics.json of the finished run, as a dict (output silenced)."""
    from nnexp.runner import run

    def _run(*overrides: str, fast: bool = True):
        cfg = compose_cfg(*overrides, fast=fast)
        with contextlib.redirect_stdout(io.StringIO()):
            objective = run(cfg)
        metrics = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
        metrics["objective"] = objective
        metrics["run_dir"] = cfg.paths.output_dir
        return metrics

    return _run


SWEEP_FAST = [*QUIET, "hydra.callbacks.sweep_summary.figures=foreground"]


@pytest.fixture
def sweep(tmp_path, monkeypatch):
    """sweep(name, *overrides) runs `nnexp -m` in-process into ./name (its own result store,
    name_store) and returns {job: metrics}."""
    import sys

    from nnexp import cli

    monkeypatch.chdir(tmp_path)

    def _sweep(name: str, *overrides: str) -> dict[str, dict]:
        GlobalHydra.instance().clear()
        monkeypatch.setattr(sys, "argv", ["nnexp", "-m", f"hydra.sweep.dir={name}", f"paths.store_dir={name}_store", *SWEEP_FAST, *overrides])
        cli.main()
        return {p.parent.name: json.loads(p.read_text()) for p in (tmp_path / name).glob("[0-9]*/metrics.json")}

    return _sweep


@pytest.fixture
def nnexp(tmp_path, monkeypatch, capsys):
    """nnexp(*argv) runs the `nnexp` command in this process: (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)

    def _run(*argv: str, entry=None) -> tuple[int, str, str]:
        from nnexp import cli

        GlobalHydra.instance().clear()
        monkeypatch.setattr(sys, "argv", ["nnexp", *argv])
        code = 0
        try:
            (entry or cli.main)()
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    return _run


@pytest.fixture
def csv_file(tmp_path):
    """A small CSV file: two informative numeric features, a noise column, and a text label."""

    def _write(rows: int = 120, **columns) -> Path:
        import pandas as pd

        rng = np.random.default_rng(0)
        x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
        frame = pd.DataFrame({"x1": x1, "x2": x2, "noise": rng.normal(size=rows)})
        frame["label"] = np.where(x1 + x2 > 0, "yes", "no")
        for name, values in columns.items():
            frame[name] = values
        path = tmp_path / "my.csv"
        frame.to_csv(path, index=False)
        return path

    return _write


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write an unsigned-byte IDX file (gzipped when the name ends in .gz)."""
    import gzip

    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    raw = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)


def tiny_digit_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """28x28 images whose class k is a bright 6x6 square at a class-specific place, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = rng.integers(0, 60, size=(n, 28, 28)).astype(np.uint8)
    for image, label in zip(images, labels):
        row, col = 2 + 8 * (label // 4), 2 + 6 * (label % 4)
        image[row : row + 6, col : col + 6] = 230
    return images, labels.astype(np.uint8)


@pytest.fixture(scope="session")
def tiny_idx_root(tmp_path_factory):
    """A data root with tiny, learnable mnist/, fashion_mnist/ and kmnist/ IDX files (plain, so
    the published .gz checksums do not apply)."""
    root = tmp_path_factory.mktemp("idx")
    train, test = tiny_digit_images(300, 0), tiny_digit_images(100, 1)
    for dataset in ("mnist", "fashion_mnist", "kmnist"):
        folder = root / dataset
        folder.mkdir()
        write_idx(folder / "train-images-idx3-ubyte", train[0])
        write_idx(folder / "train-labels-idx1-ubyte", train[1])
        write_idx(folder / "t10k-images-idx3-ubyte", test[0])
        write_idx(folder / "t10k-labels-idx1-ubyte", test[1])
    return root


def server_unavailable(reason: str) -> None:
    """Skip a test whose server cannot start here; fail it where NNEXP_REQUIRE_SERVERS=1 (CI)."""
    import os

    (pytest.fail if os.environ.get("NNEXP_REQUIRE_SERVERS") == "1" else pytest.skip)(reason)


def _postgres_bin() -> Path | None:
    import glob
    import shutil

    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(versions[-1]).parent if versions else None


@pytest.fixture(scope="session")
def postgres_url():
    """A private PostgreSQL cluster on a loopback port for the session's tests (``initdb``, then
    ``pg_ctl`` with a socket dir of its own), stopped by its pid at the end. Skipped where the
    server cannot start, unless NNEXP_REQUIRE_SERVERS=1 (CI), where that fails the tests."""
    import os
    import signal
    import socket
    import subprocess

    binaries = _postgres_bin()
    if binaries is None:
        server_unavailable("PostgreSQL (initdb, pg_ctl) is not installed")
    import shutil
    import tempfile

    # Not under pytest's tmp dir: that is private to root, and the server runs as another user.
    root = Path(tempfile.mkdtemp(prefix="nnexp-postgres-"))
    run_as = []
    if os.geteuid() == 0:  # initdb refuses to run as root: run the server as the postgres user
        run_as = ["runuser", "-u", "postgres", "--"]
        os.chown(root, *_postgres_ids())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = root / "data"
    try:
        subprocess.run([*run_as, str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "nnexp", "--no-sync"],
                       check=True, capture_output=True, text=True)
        subprocess.run([*run_as, str(binaries / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w",
                        "-o", f"-h 127.0.0.1 -p {port} -k {root} -F", "start"], check=True, capture_output=True, text=True)
    except (subprocess.CalledProcessError, OSError) as error:
        detail = getattr(error, "stderr", "") or str(error)
        server_unavailable(f"PostgreSQL did not start: {detail.strip()[:300]}")
    pid = int((data / "postmaster.pid").read_text().split()[0])
    try:
        yield f"postgresql://nnexp@127.0.0.1:{port}/postgres"
    finally:
        stopped = subprocess.run([*run_as, str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True)
        if stopped.returncode != 0:
            os.kill(pid, signal.SIGQUIT)
        shutil.rmtree(root, ignore_errors=True)


def _postgres_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


@pytest.fixture(scope="session")
def slurm_cluster():
    """A one-node SLURM cluster on localhost (scripts/slurm_local.sh), for the session's tests:
    yields the environment that points SLURM's commands at it; its daemons are stopped by pid at
    the end. Skipped where it cannot start (no slurm-wlm, not root), unless NNEXP_REQUIRE_SERVERS=1."""
    import os
    import shutil
    import subprocess

    script = Path(__file__).resolve().parents[1] / "scripts" / "slurm_local.sh"
    if shutil.which("slurmctld") is None and not Path("/usr/sbin/slurmctld").exists():
        server_unavailable("SLURM is not installed (apt-get install slurm-wlm munge)")
    if os.geteuid() != 0:
        server_unavailable("a local SLURM cluster needs root (slurmd runs jobs as their user)")
    import tempfile

    # Not under pytest's tmp dir: that is private to root, and munged runs as the munge user.
    folder = Path(tempfile.mkdtemp(prefix="nnexp-slurm-"))
    started = subprocess.run(["bash", str(script), "start", str(folder)], capture_output=True, text=True)
    if started.returncode != 0:
        server_unavailable(f"SLURM did not start: {started.stderr.strip()[:300]}")
    try:
        yield {**os.environ, "SLURM_CONF": str(folder / "slurm.conf")}
    finally:
        subprocess.run(["bash", str(script), "stop", str(folder)], capture_output=True)
        shutil.rmtree(folder)  # the script returns once its daemons have exited: nothing still writes here
