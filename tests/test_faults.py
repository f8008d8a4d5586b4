"""Bad input and faults: no stale or silent results, no lost runs, one clear line for each mistake.

Each test is one row of the README's table of bad inputs and faults ("Errors").
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAST

from nnexp import cli, command
from nnexp.store import JobStore

pytestmark = pytest.mark.hydra  # sweeps, resume and the summary go through the Hydra integration


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


# --- CSV files ---------------------------------------------------------------------------------

def write_csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize("content, encoding, message", [
    ("x1,label,x3,label\n" + "1,a,2,b\n" * 20, "utf-8", "column name(s) 'label' appear more than once"),
    ("x1,x2,label\n" + "".join(f"{i},{i % 3},yes\n" for i in range(20)), "utf-8", "the target has one class ('yes')"),
    ("x1,x2,label\n", "utf-8", "a header and no rows"),
    ("x1,x2,label\n1,2,a\n3,4,b\n", "utf-8", "rows cannot be split into training and test rows"),
    ("x1,x2,label\n" + "".join(f"{i}e306,{i},{'ab'[i % 2]}\n" for i in range(1, 21)), "utf-8", "overflow when scaled"),
    ("x1,x2,label\n" + "".join(f"{i},{i},caf\u00e9{i % 2}\n" for i in range(20)), "latin-1",
     "is not utf-8 text (byte 0xe9 at position"),
    ("x1,x2,label\n1,2\n3,4,5,6\n" + "1,2,a\n" * 20, "utf-8", "cannot parse as CSV (Error tokenizing data. C error: "
     "Expected 3 fields in line 3, saw 4); check data.delimiter"),
], ids=["duplicate columns", "one class", "header only", "two rows", "1e306 values", "latin-1 bytes", "ragged rows"])
def test_csv_mistakes_are_one_line_naming_the_fix(nnexp, tmp_path, content, encoding, message):
    path = write_csv(tmp_path / "bad.csv", content, encoding)
    code, _, err = nnexp("data=csv", f"data.path={path}", "data.target=label", *FAST)
    assert code == 2 and message in one_line(err)


def test_latin1_files_read_with_data_encoding(nnexp, tmp_path):
    rows = "".join(f"{i},{(i * 7) % 5},caf\u00e9{i % 2}\n" for i in range(40))
    path = write_csv(tmp_path / "latin.csv", "x1,x2,label\n" + rows, "latin-1")
    code, _, err = nnexp("data=csv", f"data.path={path}", "data.target=label", "data.encoding=latin-1", *FAST)
    assert code == 0, err
    metrics = json.loads(next(Path(tmp_path).glob("outputs/**/metrics.json")).read_text())
    assert metrics["status"] == "ok" and metrics["task"] == "binary"


# --- stale results, resume, store -----------------------------------------------------------

def test_an_edited_data_file_is_never_reused_from_the_store(nnexp, tmp_path, csv_file):
    path = csv_file()
    sweep = ["-m", "data=csv", f"data.path={path}", "data.target=label", "regularization.alpha=0.1,1", *FAST]
    assert nnexp(*sweep, "hydra.sweep.dir=first")[0] == 0
    code, out, _ = nnexp(*sweep, "hydra.sweep.dir=same")
    assert code == 0 and out.count("skipped, finished earlier") == 2  # unchanged data: reused
    assert "-> objective" not in out  # one line a reused job, its objective in it
    rows = path.read_text().splitlines()
    path.write_text("\n".join(rows[:-10]) + "\n")  # the user edits the file
    code, out, _ = nnexp(*sweep, "hydra.sweep.dir=edited")
    assert code == 0 and "skipped" not in out
    first, edited = (json.loads((tmp_path / name / "0" / "metrics.json").read_text()) for name in ("first", "edited"))
    assert first["data_fingerprint"] != edited["data_fingerprint"] and first["job_key"] != edited["job_key"]
    assert "datafingerprint:" + edited["data_fingerprint"] in "".join(out.split())


def test_resume_after_the_data_changed_never_writes_over_finished_jobs(nnexp, tmp_path, csv_file):
    path = csv_file()
    sweep = tmp_path / "sweep"
    assert nnexp("-m", "data=csv", f"data.path={path}", "data.target=label", "seed=0,1", *FAST, f"hydra.sweep.dir={sweep}")[0] == 0
    before = {p: p.read_bytes() for p in sweep.glob("*/*") if p.is_file()}
    path.write_text("\n".join(path.read_text().splitlines()[:-10]) + "\n")  # edited after the sweep
    code, out, _ = nnexp(f"resume={sweep}")
    assert code == 0 and out.count("holds a finished job of other settings or data") == 2
    assert {p: p.read_bytes() for p in before} == before


def test_resume_refuses_overrides_that_change_finished_jobs(nnexp, tmp_path):
    sweep = tmp_path / "sweep"
    assert nnexp("-m", "data=iris", "seed=0,1", *FAST, f"hydra.sweep.dir={sweep}")[0] == 0
    before = {p: p.read_bytes() for p in sweep.glob("*/metrics.json")}
    code, out, err = nnexp(f"resume={sweep}", "trainer.max_epochs=7")
    assert code == 2 and not out
    line = one_line(err)
    assert "trainer.max_epochs=7 would change what its jobs compute" in line
    assert "Start a new sweep instead: nnexp -m" in line and "seed=0,1" in line
    assert {p: p.read_bytes() for p in sweep.glob("*/metrics.json")} == before
    code, out, _ = nnexp(f"resume={sweep}", "quiet=true", "threads=1")  # how it runs, not what: allowed
    assert code == 0 and out.count("skipped, finished earlier") == 2


def test_resume_keeps_the_launcher_settings_it_was_launched_with(tmp_path):
    (tmp_path / "multirun.yaml").write_text(
        "hydra:\n  overrides:\n    hydra: [hydra.mode=MULTIRUN, hydra.sweep.dir=old, hydra.launcher.n_jobs=1]\n"
        "    task: [launcher=joblib, 'seed=0,1']\n")
    argv = command.resume_argv([f"resume={tmp_path}"])
    assert argv == ["-m", "launcher=joblib", "seed=0,1", "hydra.launcher.n_jobs=1", f"hydra.sweep.dir={tmp_path}"]


@pytest.mark.parametrize("damage", ["truncate model.pt", "remove history.csv", "truncate metrics.json"])
def test_a_damaged_store_entry_is_retrained_and_replaced(nnexp, tmp_path, damage):
    sweep = ["-m", "data=iris", "model=logistic", "seed=3", *FAST, f"paths.store_dir={tmp_path / 'store'}"]
    assert nnexp(*sweep, "hydra.sweep.dir=first")[0] == 0
    (entry,) = [p for p in (tmp_path / "store").iterdir() if not p.name.startswith(".")]
    verb, name = damage.split()
    if verb == "truncate":
        (entry / name).write_bytes((entry / name).read_bytes()[:20])
    else:
        (entry / name).unlink()
    code, out, _ = nnexp(*sweep, "hydra.sweep.dir=second")
    assert code == 0 and "stored result damaged" in out and "skipped" not in out
    assert (tmp_path / "store").joinpath(entry.name).is_dir() and not JobStore(tmp_path / "store").damage(entry.name)
    assert JobStore(tmp_path / "store").lookup(entry.name) == entry  # repaired: the next sweep reuses it


# --- divergence -------------------------------------------------------------------------------

def test_a_finite_exploding_loss_is_diverged(nnexp, tmp_path):
    code, _, _ = nnexp("data=iris", "optim=sgd", "optim.lr=1e6", "stopping=none", *FAST, "hydra.run.dir=run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert code == 1 and metrics["status"] == "diverged"
    code, _, _ = nnexp("data=iris", "optim=sgd", "optim.lr=1e6", "stopping=none", "stopping.divergence_factor=0",
                       *FAST, "hydra.run.dir=off")
    loss = json.loads((tmp_path / "off" / "metrics.json").read_text())
    assert loss["status"] in ("ok", "diverged")  # factor off: only a non-finite loss counts


@pytest.mark.parametrize("launcher", ["basic", "batched"])
def test_a_diverged_job_is_never_ranked_above_an_ok_one(nnexp, tmp_path, launcher):
    code, _, _ = nnexp("-m", f"launcher={launcher}", "data=iris", "optim=sgd", "optim.lr=0.01,1e6", "stopping=none",
                       *FAST, "hydra.sweep.dir=sweep")
    rows = list(csv.DictReader((tmp_path / "sweep" / "summary.csv").open()))
    by_lr = {row["param_optim.lr"]: row for row in rows}
    assert code == 0 and by_lr["1000000.0"]["status"] == "1 diverged" and by_lr["0.01"]["rank_val_score"] == "1"
    assert rows[0]["param_optim.lr"] == "0.01"


# --- summaries --------------------------------------------------------------------------------

def test_the_summary_lists_missing_grid_points_and_refit_refuses_them(nnexp, tmp_path):
    sweep = tmp_path / "sweep"
    assert nnexp("-m", "data=iris", "model=logistic", "regularization.alpha=0.1,1,10", *FAST, f"hydra.sweep.dir={sweep}")[0] == 0
    import shutil

    shutil.rmtree(sweep / "2")  # as if the sweep had been killed before its last job
    code, out, _ = nnexp(str(sweep), "--refit", "--no-plots", entry=cli.summary_main)
    text = "".join(out.split())  # rich wraps long lines, even inside a path
    rows = {row["param_regularization.alpha"]: row for row in csv.DictReader((sweep / "summary.csv").open())}
    assert code == 0 and rows["10"]["status"] == "1 missing" and len(rows) == 3
    assert "refitskipped" in text and f"nnexpresume={sweep}" in text and not (sweep / "refit").exists()
    code, out, _ = nnexp(str(sweep), "--refit", "--refit-incomplete", "--no-plots", entry=cli.summary_main)
    assert code == 0 and (sweep / "refit" / "metrics.json").is_file()


def test_summary_and_plot_refuse_a_folder_that_is_not_a_sweep(nnexp, tmp_path):
    assert nnexp("data=iris", *FAST, "hydra.run.dir=outputs/run")[0] == 0
    code, out, err = nnexp("outputs", entry=cli.summary_main)
    assert code == 2 and "is not a sweep dir" in one_line(err) and not (tmp_path / "outputs" / "summary.csv").exists()
    code, _, err = nnexp("outputs", entry=cli.plot_main)
    assert code == 2 and "neither a run dir" in one_line(err)


# --- faults -----------------------------------------------------------------------------------

@pytest.mark.parametrize("folder", ["readonly", "proc"])
def test_a_run_dir_that_cannot_be_written_is_one_line(nnexp, tmp_path, folder):
    if folder == "readonly":
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders (the /proc case covers it)")
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        run_dir = locked / "run"
    else:
        run_dir = Path("/proc/nnexp-cannot-write/run")  # not even root can make folders there
    code, _, err = nnexp("data=iris", *FAST, f"hydra.run.dir={run_dir}")
    assert code == 1 and "make the folder writable" in one_line(err)


@pytest.mark.parametrize("argv, message", [
    (["--config-dir", "{tmp}/mine", "data=broken"], 'mapping values are not allowed in this context in "{tmp}/mine/data/broken.yaml", line 3'),
    (["data=iris", "model.hidden_sizes=[10"], "model.hidden_sizes=[10: "),
    (["data=iris", "+foo.bar=1"], "nnexp has no key foo"),
    (["+experiment=nope"], "experiment=nope is not an option"),
    (["--config-dir", "{tmp}/fine", "data=irs"], "Could not find 'data/irs'; Available options in 'data': blobs, breast_cancer, "),
], ids=["broken YAML in a user config dir", "override grammar", "unknown key added", "unknown experiment",
        "unknown option with a user config dir"])
def test_hydras_own_errors_are_one_line_with_exit_2(nnexp, tmp_path, argv, message):
    (tmp_path / "fine" / "data").mkdir(parents=True)
    (tmp_path / "fine" / "data" / "mine.yaml").write_text("defaults:\n  - csv\n")
    (tmp_path / "mine" / "data").mkdir(parents=True)
    (tmp_path / "mine" / "data" / "broken.yaml").write_text("_target_: nnexp.data.sources.GeneratedSource\nname: broken\n  oops: [\n")
    args = [arg.format(tmp=tmp_path) for arg in argv]
    flags = args[:2] if args[0].startswith("--") else []  # flags first; a broken override last (Hydra joins what follows)
    code, out, err = nnexp(*flags, *FAST, *args[len(flags):])
    assert code == 2 and message.format(tmp=tmp_path) in one_line(err) and "Traceback" not in err


def test_a_store_that_cannot_be_written_keeps_the_job_dir(nnexp, tmp_path):
    (tmp_path / "store").write_text("a file where the store folder should be")
    code, out, _ = nnexp("-m", "data=iris", "model=logistic", "seed=0,1", *FAST, f"paths.store_dir={tmp_path / 'store'}",
                         "hydra.sweep.dir=sweep")
    assert code == 0 and out.count("not stored (") == 2
    assert len(list(csv.DictReader((tmp_path / "sweep" / "summary.csv").open()))) == 1
    assert all(json.loads(p.read_text())["status"] == "ok" for p in (tmp_path / "sweep").glob("*/metrics.json"))


def test_ctrl_c_keeps_finished_jobs_says_how_to_go_on_and_exits_130(tmp_path):
    command = [str(Path(sys.executable).with_name("nnexp")), "-m", "hydra.sweep.dir=sweep", *FAST,
               "data=digits", "trainer.max_epochs=300", "stopping=none", "regularization.alpha=1e-4,1e-3,1e-2,1e-1"]  # jobs of ~2 s: the SIGINT finds the sweep running
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for line in process.stdout:  # each job reports "-> objective" once its files are written
        if "-> objective" in line:
            break
    process.send_signal(signal.SIGINT)
    _, err = process.communicate()
    kept = len(list((tmp_path / "sweep").glob("*/metrics.json")))
    assert process.returncode == 130 and kept >= 1
    assert re.search(r"interrupted: \d+ finished jobs? kept in sweep; go on with: nnexp resume=sweep", err) and "Traceback" not in err


@pytest.mark.parametrize("launcher", ["basic", "batched"])
def test_a_ctrl_c_that_a_finalizer_swallows_still_stops_the_sweep_at_the_next_job(nnexp, tmp_path, monkeypatch, launcher):
    """Python ignores a KeyboardInterrupt raised inside ``__del__`` (Lightning's profiler tears
    down there when a job's Trainer is collected): the sweep must still stop."""
    from nnexp.job import Job

    class SwallowsCtrlC:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)  # the handler runs here, inside the finalizer

    jobs_started = []
    real_run = Job.run

    def run(job, result=None):
        record = real_run(job, result)
        jobs_started.append(record)
        if len(jobs_started) == 1:
            SwallowsCtrlC()  # freed at once: the SIGINT is raised and swallowed in its __del__
        return record

    monkeypatch.setattr(Job, "run", run)
    swallowed = []
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: swallowed.append(unraisable.exc_type))  # Python's "Exception ignored"
    code, _, err = nnexp("-m", "hydra.sweep.dir=sweep", f"launcher={launcher}", *FAST, "data=iris", "regularization.alpha=1e-3,1e-2,1e-1", "refit=true")
    assert swallowed == [KeyboardInterrupt]
    assert code == 130 and "interrupted: 1 finished job kept in sweep; go on with: nnexp resume=sweep" in err
    assert len(jobs_started) == 1 and not (tmp_path / "sweep" / "refit").exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # this process's handler is back


def test_an_unknown_encoding_names_the_key(tmp_path):
    from nnexp.data.csv_source import CsvSource
    from nnexp.errors import ConfigError

    path = write_csv(tmp_path / "x.csv", "a,b\n1,2\n")
    with pytest.raises(ConfigError, match="data.encoding='no-such-codec' is not allowed: an encoding Python knows"):
        CsvSource(str(path), "b", encoding="no-such-codec", name="x").arrays()


# --- images -----------------------------------------------------------------------------------

def test_swapped_idx_files_are_one_line_in_validate_mode(nnexp, tmp_path):
    import shutil

    from conftest import tiny_digit_images, write_idx

    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    (train_images, train_labels), (test_images, test_labels) = tiny_digit_images(60, 0), tiny_digit_images(20, 1)
    write_idx(folder / "train-images-idx3-ubyte", train_images)
    write_idx(folder / "train-labels-idx1-ubyte", train_labels)
    write_idx(folder / "t10k-images-idx3-ubyte", test_labels)  # swapped
    write_idx(folder / "t10k-labels-idx1-ubyte", test_images)
    code, out, err = nnexp("data=mnist", f"data.root={tmp_path / 'data'}", "mode=validate", *FAST)
    assert code == 2 and "the files are swapped" in one_line(err) and "config OK" not in out
    write_idx(folder / "t10k-images-idx3-ubyte", test_images)
    write_idx(folder / "t10k-labels-idx1-ubyte", test_labels)
    assert nnexp("data=mnist", f"data.root={tmp_path / 'data'}", "mode=validate", *FAST)[0] == 0
    shutil.rmtree(folder)


def test_a_corrupt_image_cache_is_rebuilt_with_a_note(tiny_idx_root, capsys):
    from nnexp.data.idx import load_idx_dataset

    first = load_idx_dataset(tiny_idx_root, "kmnist")
    (cache,) = list((tiny_idx_root / "kmnist").glob(".nnexp-cache/train-images*.npy"))
    cache.write_bytes(cache.read_bytes()[:100])  # a truncated cache file
    capsys.readouterr()
    again = load_idx_dataset(tiny_idx_root, "kmnist")
    assert "was unreadable; rebuilt it" in one_line(capsys.readouterr().err)
    assert (again["train_images"] == first["train_images"]).all()
    load_idx_dataset(tiny_idx_root, "kmnist")
    assert capsys.readouterr().err == ""  # the rebuilt cache is read


def test_a_sweep_into_another_sweeps_dir_is_refused_before_it_writes(nnexp, tmp_path):
    # It numbered its jobs over the other sweep's: their results were read as its own, under its
    # parameters, and Hydra rewrote their .hydra files
    first = ["-m", "hydra.sweep.dir=T", "data=iris", "regularization.alpha=1,2", *FAST]
    assert nnexp(*first)[0] == 0
    before = {path: path.read_bytes() for path in (tmp_path / "T").rglob("*") if path.is_file()}
    code, out, err = nnexp("-m", "hydra.sweep.dir=T", "data=moons", "regularization.alpha=3,4,5", *FAST)
    assert code == 2 and err.strip().startswith("error: T holds another sweep's finished jobs (0: data=iris regularization.alpha=1")
    assert "resume=T" in err and {path: path.read_bytes() for path in before} == before and not (tmp_path / "T" / "2").exists()
    code, out, _ = nnexp("-m", "hydra.sweep.dir=T", "data=iris", "regularization.alpha=1,2,3", *FAST)  # the same sweep, grown
    assert code == 0 and out.count("skipped, finished earlier") == 2 and (tmp_path / "T" / "2" / "metrics.json").is_file()
