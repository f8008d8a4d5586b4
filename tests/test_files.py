"""Result files survive a crash (fsync before and after each atomic rename), honour the umask, and
caches live where platformdirs says (XDG honoured)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from nnexp import durable
from nnexp.results import METRICS_FILE, atomic_path, write_text_atomic


@pytest.fixture
def umask():
    """umask(value): set the process's umask for this test only."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_result_files_take_the_umasks_mode(tmp_path, umask, mask, expected):
    umask(mask)
    write_text_atomic(tmp_path / "run" / METRICS_FILE, "{}")
    assert mode(tmp_path / "run" / METRICS_FILE) == expected


def test_store_entries_take_the_umasks_mode(tmp_path, umask):
    from nnexp.store import JobStore

    umask(0o022)
    run_dir = tmp_path / "run"
    write_text_atomic(run_dir / METRICS_FILE, '{"status": "ok"}')
    store = JobStore(tmp_path / "store")
    store.commit("k1", run_dir)
    entry = tmp_path / "store" / "k1"
    assert mode(entry) == 0o755
    assert {mode(path) for path in entry.iterdir()} == {0o644}


def recorder(monkeypatch, module) -> list:
    """Record fsyncs and renames, in order, as (what, path)."""
    events = []
    monkeypatch.setattr(durable, "fsync_file", lambda path: events.append(("fsync file", Path(path).name)))
    monkeypatch.setattr(durable, "fsync_folder", lambda path: events.append(("fsync folder", Path(path).name)))
    for name in ("replace", "rename"):
        real = getattr(os, name)

        def renamed(source, target, _real=real, _name=name):
            events.append((_name, Path(target).name))
            return _real(source, target)

        monkeypatch.setattr(module.os, name, renamed)
    return events


def test_a_result_file_is_synced_before_its_rename_and_its_folder_after(tmp_path, monkeypatch):
    import nnexp.results

    events = recorder(monkeypatch, nnexp.results)
    with atomic_path(tmp_path / "run" / METRICS_FILE) as temporary:
        temporary.write_text("{}")
    assert [what for what, _ in events] == ["fsync file", "replace", "fsync folder"]
    assert events[0][1].startswith(f".{METRICS_FILE}.") and events[1][1] == METRICS_FILE and events[2][1] == "run"


@pytest.mark.parametrize("links", [True, False], ids=["linked", "copied"])
def test_a_store_entry_is_synced_before_its_rename_and_the_store_after(tmp_path, monkeypatch, links):
    """A result file linked from the run dir was synced there; a copy (another file system) is synced here."""
    import nnexp.store

    run_dir = tmp_path / "run"
    write_text_atomic(run_dir / METRICS_FILE, '{"status": "ok"}')
    write_text_atomic(run_dir / "history.csv", "epoch\n1\n")
    if not links:
        monkeypatch.setattr(nnexp.store, "linked", lambda source, target: False)
    events = recorder(monkeypatch, nnexp.store)
    nnexp.store.JobStore(tmp_path / "store").commit("k1", run_dir)
    rename = [what for what, _ in events].index("rename")
    synced = ["history.csv", METRICS_FILE] if not links else []
    assert events[:rename] == [("fsync file", name) for name in [*synced, "manifest.json"]] + [("fsync folder", events[rename - 1][1])]
    assert events[rename + 1:] == [("fsync folder", "store")]
    entry = tmp_path / "store" / "k1"
    assert (entry / "history.csv").read_text() == "epoch\n1\n"
    same_file = (entry / METRICS_FILE).stat().st_ino == (run_dir / METRICS_FILE).stat().st_ino
    assert same_file is links


def test_a_run_dir_file_replaced_after_its_commit_leaves_the_store_entry_as_committed(tmp_path):
    from nnexp.store import JobStore

    run_dir = tmp_path / "run"
    write_text_atomic(run_dir / "history.csv", "first")
    write_text_atomic(run_dir / METRICS_FILE, '{"status": "ok"}')
    JobStore(tmp_path / "store").commit("k1", run_dir)
    write_text_atomic(run_dir / "history.csv", "second")  # nnexp replaces run-dir files by renames only
    assert (tmp_path / "store" / "k1" / "history.csv").read_text() == "first"


def test_a_jobs_new_files_sync_together_before_the_metrics_that_mark_them_finished_and_their_folder_after(tmp_path, monkeypatch):
    import nnexp.results

    events = recorder(monkeypatch, nnexp.results)
    run = tmp_path / "run"
    with durable.job_syncs_together():
        for name in ("config.yaml", "history.csv", "model.pt", METRICS_FILE):
            write_text_atomic(run / name, name)
        assert events[-1] == ("replace", METRICS_FILE)  # its own rename's sync is put off to the block's end
        write_text_atomic(run / "sklearn.json", "{}")  # beside a finished result: synced before its rename
        assert events[-2:] == [("fsync file", events[-2][1]), ("replace", "sklearn.json")]
        assert events[-2][1].startswith(".sklearn.json.")
        del events[-2:]
    assert events[:3] == [("replace", "config.yaml"), ("replace", "history.csv"), ("replace", "model.pt")]
    # before metrics.json's rename: the three files' data, its own, and their folder, in one go
    together = events[3:8]
    data = sorted(name for what, name in together if what == "fsync file")
    assert data[0].startswith(f".{METRICS_FILE}.") and data[1:] == ["config.yaml", "history.csv", "model.pt"]
    assert ("fsync folder", "run") in together
    assert events[8:] == [("replace", METRICS_FILE), ("fsync folder", "run")]
    events.clear()
    write_text_atomic(run / "summary.csv", "")  # outside a block: synced at once
    assert [what for what, _ in events] == ["fsync file", "replace", "fsync folder"]
    events.clear()
    with durable.job_syncs_together():  # a file that replaces one is synced before its rename, in a block too
        write_text_atomic(run / "history.csv", "again")
        assert [what for what, _ in events] == ["fsync file", "replace"]
    assert events[-1] == ("fsync folder", "run")


def test_syncs_put_off_are_made_when_the_block_raises(tmp_path, monkeypatch):
    import nnexp.results

    events = recorder(monkeypatch, nnexp.results)
    with pytest.raises(RuntimeError), durable.job_syncs_together():
        write_text_atomic(tmp_path / "a" / "history.csv", "")
        write_text_atomic(tmp_path / "b" / "history.csv", "")
        raise RuntimeError("the fit failed")
    assert sorted(event for event in events if event[0].startswith("fsync")) == [
        ("fsync file", "history.csv"), ("fsync file", "history.csv"), ("fsync folder", "a"), ("fsync folder", "b")]


def test_concurrent_syncs_reach_every_file_and_folder(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.fstat(fd).st_ino), real(fd)))
    files = [durable.new_file(tmp_path, f".{n}.") for n in range(5)]
    files[-1].unlink()  # removed meanwhile: nothing to sync
    durable.sync(files, [tmp_path])
    assert sorted(synced) == sorted([path.stat().st_ino for path in files[:-1]] + [tmp_path.stat().st_ino])


def test_the_durable_helpers_really_sync(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.fstat(fd).st_ino), real(fd)))
    path = durable.new_file(tmp_path, ".x.", ".tmp")
    durable.fsync_file(path)
    durable.fsync_folder(tmp_path)
    assert synced == [path.stat().st_ino, tmp_path.stat().st_ino]


def test_the_data_cache_follows_xdg_cache_home(tmp_path, monkeypatch):
    from nnexp.data.idx import cache_dir_for

    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o555)  # read-only: the cache goes to the user's cache folder
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    try:
        assert cache_dir_for(data).parent == tmp_path / "xdg" / "nnexp"
    finally:
        data.chmod(0o755)


def test_an_old_cache_in_dot_cache_is_moved_once_with_a_note(tmp_path, monkeypatch, capsys):
    from nnexp.data.idx import cache_dir_for

    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o555)
    old = tmp_path / "home" / ".cache" / "nnexp"
    (old / "abc").mkdir(parents=True)
    (old / "abc" / "x.npy").write_bytes(b"cached")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    try:
        first = cache_dir_for(data)
        second = cache_dir_for(data)
    finally:
        data.chmod(0o755)
    assert first == second and first.parent == tmp_path / "xdg" / "nnexp"
    assert (tmp_path / "xdg" / "nnexp" / "abc" / "x.npy").read_bytes() == b"cached" and not old.exists()
    assert capsys.readouterr().err.count("moved nnexp's cache") == 1


def test_the_warm_folder_follows_xdg_runtime_dir_and_stays_private(tmp_path, umask):
    from nnexp.warm.identity import private_folder

    umask(0o022)
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    folder = private_folder({"XDG_RUNTIME_DIR": str(runtime)})
    assert folder.parent == runtime and mode(folder) == 0o700
