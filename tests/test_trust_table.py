"""A hostile but realistic user's inputs, one row each: the command, the exit code, a fragment of the output.

Each kind of fault (issue 32) has several rows. A row runs ``nnexp`` in this process with its
files written first (a user's config dir, a CSV, an image cache ...). Exit 2 must come with
exactly one line on stderr (``error: ...``) containing the fragment; exit 0 or 1 with the fragment
somewhere in stdout or stderr (a note, a status).
"""

from __future__ import annotations

import bz2
import errno
import gzip
import lzma
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hydra.core.global_hydra import GlobalHydra

from nnexp import cli

FAST = ["quiet=true", "logger=none", "plots=false"]
VALIDATE = [*FAST, "mode=validate"]
EXP = "# @package _global_\n"


def csv_text(rows: int = 60, label=lambda i: "yes" if i % 2 else "no") -> str:
    rng = np.random.default_rng(0)
    lines = ["x1,x2,label"] + [f"{rng.normal():.3f},{rng.normal():.3f},{label(i)}" for i in range(rows)]
    return "\n".join(lines) + "\n"


def pandas_index_csv(rows: int = 60) -> str:
    rng = np.random.default_rng(0)
    lines = [",x1,x2,label"] + [f"{i},{rng.normal():.3f},{rng.normal():.3f},{'yes' if i % 2 else 'no'}" for i in range(rows)]
    return "\n".join(lines) + "\n"


def compressed(opener):
    def write(path: Path):
        with opener(path, "wb") as handle:
            handle.write(csv_text().encode())
    return write


def zipped(path: Path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("my.csv", csv_text())


def encoded(encoding: str):
    def write(path: Path):
        path.write_bytes(csv_text().encode(encoding))
    return write


def tampered_label_cache(tmp: Path):
    """An MNIST-like root whose decoded label cache was altered with its size and mtime kept."""
    from conftest import tiny_digit_images, write_idx

    folder = tmp / "idx" / "mnist"
    folder.mkdir(parents=True)
    train, test = tiny_digit_images(100, 0), tiny_digit_images(50, 1)
    write_idx(folder / "train-images-idx3-ubyte", train[0])
    write_idx(folder / "train-labels-idx1-ubyte", train[1])
    write_idx(folder / "t10k-images-idx3-ubyte", test[0])
    write_idx(folder / "t10k-labels-idx1-ubyte", test[1])
    from nnexp.data.idx import load_idx_dataset

    load_idx_dataset(tmp / "idx", "mnist")
    cached = next((folder / ".nnexp-cache").glob("t10k-labels*.npy"))
    stat = cached.stat()
    array = np.load(cached)
    np.save(cached, (array + 1) % 10)
    os.utime(cached, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def truncated_image_cache(tmp: Path):
    tampered_label_cache(tmp)
    cached = next((tmp / "idx" / "mnist" / ".nnexp-cache").glob("train-images*.npy"))
    data = bytearray(cached.read_bytes())
    data[-50:] = bytes(50)
    cached.write_bytes(bytes(data))


def full_disk(monkeypatch):
    real = os.replace

    def no_space(src, dst, *args, **kwargs):
        if str(dst).endswith(".json"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", no_space)


MNIST = ["data=mnist", "data.root={tmp}/idx", "model.hidden_sizes=[8]", "trainer.max_epochs=1"]
CSV = ["data=csv", "data.path={tmp}/my.csv", "data.target=label"]

# (id, files {path: text or writer}, command, exit code, fragment, extra: None | "hydra_full_error=0" | "full_disk")
ROWS = [
    # 1. User config files are as strict as the command line.
    ("files:root-typo", {"conf/experiment/mine.yaml": EXP + "learning_rate: 0.1\n"},
     ["--config-dir", "{tmp}/conf", "experiment=mine", *VALIDATE], 2, "learning_rate"),
    ("files:optim-typo", {"conf/experiment/mine.yaml": EXP + "optim:\n  lrr: 0.1\n"},
     ["--config-dir", "{tmp}/conf", "experiment=mine", *VALIDATE], 2, "lrr"),
    ("files:data-typo", {"conf/experiment/mine.yaml": EXP + "data:\n  test_sise: 0.3\n"},
     ["--config-dir", "{tmp}/conf", "experiment=mine", *VALIDATE], 2, "test_sise"),
    ("files:trainer-typo", {"conf/experiment/mine.yaml": EXP + "trainer:\n  max_epoch: 3\n"},
     ["--config-dir", "{tmp}/conf", "experiment=mine", *VALIDATE], 2, "max_epoch"),
    ("files:stopping-typo", {"conf/experiment/mine.yaml": EXP + "stopping:\n  patiense: 3\n"},
     ["--config-dir", "{tmp}/conf", "experiment=mine", *VALIDATE], 2, "patiense"),
    ("files:not-a-mapping", {"conf/experiment/mine.yaml": "- lr\n- 0.1\n"},
     ["--config-dir", "{tmp}/conf", "experiment=mine", *VALIDATE], 2, "mine.yaml"),
    ("files:a-bare-word", {"conf/optim/mine.yaml": "adam\n"},
     ["--config-dir", "{tmp}/conf", "optim=mine", *VALIDATE], 2, "mine.yaml"),
    ("files:yaml-error", {"conf/experiment/mine.yaml": EXP + "optim:\n  lr: [0.1\n"},
     ["--config-dir", "{tmp}/conf", "experiment=mine", *VALIDATE], 2, "line"),
    ("files:yaml-error-in-group", {"conf/optim/mine.yaml": "lr: 0.1\n  eps: 1\n"},
     ["--config-dir", "{tmp}/conf", "optim=mine", *VALIDATE], 2, "mine.yaml"),
    ("files:wrong-target", {"conf/optim/mine.yaml": "_target_: torch.optim.Adamm\n_partial_: true\nlr: 0.01\n"},
     ["--config-dir", "{tmp}/conf", "optim=mine", *VALIDATE], 2, "_target_"),
    ("files:group-file-typo", {"conf/optim/mine.yaml": "_target_: nnexp.training.optimizers.Adam\n_partial_: true\nlrr: 0.01\n"},
     ["--config-dir", "{tmp}/conf", "optim=mine", *VALIDATE], 2, "lrr"),
    ("files:command-line-typo-with-dir", {"conf/experiment/mine.yaml": EXP + "seed: 1\n"},
     ["--config-dir", "{tmp}/conf", "learning_rat=0.1", *VALIDATE], 2, "learning_rat"),
    ("files:good-file", {"conf/experiment/mine.yaml": EXP + "optim:\n  lr: 0.01\nmodel:\n  hidden_sizes: [5]\n"},
     ["--config-dir", "{tmp}/conf", "experiment=mine", *VALIDATE], 0, ""),
    ("files:own-key-used-by-interpolation", {"conf/experiment/mine.yaml": EXP + "width: 5\nmodel:\n  hidden_sizes: ['${width}']\n"},
     ["--config-dir", "{tmp}/conf", "experiment=mine", *VALIDATE], 0, ""),
    # 2. Divergence against the trivial predictor.
    ("diverge:huge-from-first-epoch", {}, ["data=diabetes", "optim.lr=1000", "batch_size=8", "trainer.max_epochs=3",
                                           "stopping=none", *FAST], 1, "diverged"),
    ("diverge:huge-classification", {}, ["data=iris", "optim.lr=1000", "batch_size=8", "model.activation=tanh",
                                         "trainer.max_epochs=3", "stopping=none", *FAST], 1, "diverged"),
    ("diverge:stack", {}, ["-m", "launcher=batched", "data=diabetes", "optim.lr=1000,0.001", "batch_size=8",
                           "trainer.max_epochs=3", "stopping=none", *FAST], 0, "diverged"),
    ("diverge:nan", {}, ["data=iris", "optim=sgd", "optim.lr=1e30", "trainer.max_epochs=3", *FAST], 1, "diverged"),
    ("diverge:healthy-run", {}, ["data=iris", "trainer.max_epochs=3", *FAST], 0, ""),
    ("diverge:healthy-regression", {}, ["data=diabetes", "trainer.max_epochs=3", *FAST], 0, ""),
    # 3. Caches verified by content.
    ("cache:labels-altered", {"": tampered_label_cache}, [*MNIST, *FAST], 0, "rebuilt"),
    ("cache:images-altered", {"": truncated_image_cache}, [*MNIST, *FAST], 0, "rebuilt"),
    # 4. CSV hygiene.
    ("csv:whitespace-labels", {"my.csv": csv_text(label=lambda i: "yes" if i % 4 == 1 else " yes" if i % 4 == 3 else "no")},
     [*CSV, *VALIDATE], 0, "whitespace"),
    ("csv:case-labels", {"my.csv": csv_text(label=lambda i: "yes" if i % 4 == 1 else "Yes" if i % 4 == 3 else "no")},
     [*CSV, *VALIDATE], 0, "case"),
    ("csv:pandas-index", {"my.csv": pandas_index_csv()}, [*CSV, *VALIDATE], 0, "index"),
    ("csv:gzip", {"my.csv": compressed(gzip.open)}, [*CSV, *VALIDATE], 0, ""),
    ("csv:gzip-named", {"my.csv.gz": compressed(gzip.open)}, ["data=csv", "data.path={tmp}/my.csv.gz", "data.target=label", *VALIDATE], 0, ""),
    ("csv:bz2", {"my.csv": compressed(bz2.open)}, [*CSV, *VALIDATE], 0, ""),
    ("csv:xz", {"my.csv": compressed(lzma.open)}, [*CSV, *VALIDATE], 0, ""),
    ("csv:zip", {"my.csv": zipped}, [*CSV, *VALIDATE], 0, ""),
    ("csv:utf-16", {"my.csv": encoded("utf-16")}, [*CSV, *VALIDATE], 0, ""),
    ("csv:utf-32", {"my.csv": encoded("utf-32")}, [*CSV, *VALIDATE], 0, ""),
    ("csv:utf-8-bom", {"my.csv": encoded("utf-8-sig")}, [*CSV, *VALIDATE], 0, ""),
    # 5. Paths stay under their roots.
    ("paths:task-name-up", {}, ["task_name=../../x", *VALIDATE], 2, "task_name"),
    ("paths:task-name-absolute", {}, ["task_name=/tmp/elsewhere", *VALIDATE], 2, "task_name"),
    ("paths:task-name-nested", {}, ["task_name=a/b", *VALIDATE], 0, ""),
    ("paths:explicit-run-dir", {}, ["hydra.run.dir={tmp}/../mine", *VALIDATE], 0, ""),
    ("paths:sweep-task-name-up", {}, ["-m", "task_name=a,../../y", "seed=0", *VALIDATE], 2, "task_name"),
    ("paths:file-task-name-up", {"conf/experiment/mine.yaml": EXP + "task_name: ../../z\n"},
     ["--config-dir", "{tmp}/conf", "experiment=mine", *VALIDATE], 2, "task_name"),
    ("paths:task-name-up-explicit-run-dir", {}, ["task_name=../../x", "hydra.run.dir={tmp}/mine", *VALIDATE], 0, ""),
    ("paths:file-task-name-up-sweep", {"conf/experiment/mine.yaml": EXP + "task_name: ../../z\n"},
     ["-m", "--config-dir", "{tmp}/conf", "experiment=mine", "seed=0,1", *VALIDATE], 2, "task_name"),
    ("paths:file-job-name-up", {"conf/experiment/mine.yaml": EXP + "hydra:\n  job:\n    name: ../../../w\n"},
     ["--config-dir", "{tmp}/conf", "experiment=mine", *VALIDATE], 2, "hydra.job.name"),
    ("paths:job-name-up", {}, ["hydra.job.name=../../../w", *VALIDATE], 2, "hydra.job.name"),
    ("launcher:timeout-text", {}, ["-m", "launcher=submitit_local", "hydra.launcher.timeout_min=abc", "seed=0,1", *VALIDATE],
     2, "hydra.launcher.timeout_min='abc' is not allowed: a positive whole number of minutes"),
    ("launcher:poll-negative", {}, ["-m", "launcher=submitit_local", "hydra.launcher.poll_s=-1", "seed=0,1", *VALIDATE],
     2, "hydra.launcher.poll_s=-1 is not allowed: a positive number of seconds"),
    # 6. Resources before allocation.
    ("resources:huge-mlp", {}, ["model.hidden_sizes=[200000,200000,200000]", *VALIDATE], 2, "GiB"),
    ("resources:huge-cnn", {}, ["data=digits_images", "model=cnn_small", "model.hidden_sizes=[400000,400000]", *VALIDATE], 2, "GiB"),
    ("resources:fits", {}, ["model.hidden_sizes=[1000,1000]", *VALIDATE], 0, ""),
    ("resources:full-disk", {"": "full_disk"}, ["data=iris", "trainer.max_epochs=2", *FAST], 1, "No space left"),
    ("resources:full-disk-sweep", {"": "full_disk"}, ["-m", "data=iris", "seed=0,1", "trainer.max_epochs=2", *FAST], 1,
     "No space left"),
    ("resources:full-disk-cnn", {"": "full_disk"}, ["data=digits_images", "model=cnn_small", "trainer.max_epochs=1", *FAST], 1,
     "No space left"),
    # 7. Every numeric setting validated.
    ("numbers:step-size-0", {}, ["schedule=step", "schedule.step_size=0", *VALIDATE], 2, "step_size"),
    ("numbers:gamma-negative", {}, ["schedule=step", "schedule.gamma=-1", *VALIDATE], 2, "gamma"),
    ("numbers:eps-negative", {}, ["optim.eps=-1", *VALIDATE], 2, "eps"),
    ("numbers:power-t-word", {}, ["optim=sgd", "schedule=invscaling", "schedule.power_t=abc", *VALIDATE], 2, "power_t"),
    ("numbers:test-size-0", {}, ["data.test_size=0", *VALIDATE], 2, "test_size"),
    ("numbers:max-iter-0", {}, ["optim=lbfgs", "optim.max_iter=0", *VALIDATE], 2, "max_iter"),
    # 8. Messages that point the right way.
    ("messages:nested-typo", {}, ["optim.lrr=0.1", *VALIDATE], 2, "optim.lr"),
    ("messages:nested-typo-stopping", {}, ["stopping.patiense=3", *VALIDATE], 2, "stopping.patience"),
    ("messages:unquoted-semicolon", {"my.csv": csv_text()}, [*CSV, "data.delimiter=;", *VALIDATE], 2, "data.delimiter"),
    ("messages:interpolation-unknown-key", {}, ["optim.lr=${nope}", *VALIDATE], 2, "optim.lr='${nope}'"),
    ("messages:file-interpolation-unknown-resolver", {"conf/experiment/mine.yaml": EXP + "seed: ${nope:1}\n"},
     ["--config-dir", "{tmp}/conf", "experiment=mine", *VALIDATE], 2, "seed='${nope:1}'"),
    ("messages:classify-regression", {}, ["data=diabetes", "data.task=classification", *VALIDATE], 2, "regression"),
    # 9. Hydra's variables that a user may have set change nothing.
    ("env:full-error-0-override", {"": "hydra_full_error=0"}, ["optim.lrr=0.1", *VALIDATE], 2, "lrr"),
    ("env:full-error-0-group", {"": "hydra_full_error=0"}, ["--config-dir", "{tmp}/nope", "optim=nope", *VALIDATE], 2, "nope"),
    ("env:full-error-0-yaml", {"": "hydra_full_error=0", "conf/experiment/mine.yaml": EXP + "optim:\n  lr: [0.1\n"},
     ["--config-dir", "{tmp}/conf", "experiment=mine", *VALIDATE], 2, "line"),
]


@pytest.mark.parametrize("files, command, code, fragment", [pytest.param(*row[1:], id=row[0]) for row in ROWS])
def test_a_users_input_ends_in_one_clear_line_or_a_correct_result(files, command, code, fragment, tmp_path, monkeypatch,
                                                                    capsys, request):
    beside = set(tmp_path.parent.iterdir())  # where a name with ../ would put a folder
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    for name, content in files.items():
        path = tmp_path / name
        if content == "hydra_full_error=0":
            monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
        elif content == "full_disk":
            full_disk(monkeypatch)
        elif callable(content) and not name:
            content(tmp_path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            content(path) if callable(content) else path.write_text(content)
    exit_code = cli_exit_code(command, tmp_path, monkeypatch)
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert exit_code == code, captured.err[-3000:]
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith("error: "), captured.err[-3000:]
    assert fragment in captured.out + captured.err, captured.err[-3000:]
    if not any("{tmp}/.." in arg for arg in command):  # only a run dir the user chose may be outside
        assert set(tmp_path.parent.iterdir()) == beside
    if request.node.callspec.id.startswith("paths:") and code == 2:  # refused before any folder is made
        assert not (tmp_path / "outputs").exists() and not (tmp_path / "multirun").exists()


def test_the_table_has_several_rows_of_every_kind():
    kinds = {}
    for row in ROWS:
        kinds[row[0].split(":")[0]] = kinds.get(row[0].split(":")[0], 0) + 1
    assert set(kinds) >= {"files", "diverge", "cache", "csv", "paths", "resources", "numbers", "messages", "env"}
    assert min(kinds.values()) >= 2


SINFO = "n1 8 16000 debug* (null) 1:00:00\nn2 4 64000 big (null) infinite\ng1 16 128000 gpu gpu:a100:2(S:0-1) 2-00:00:00\n"
CLUSTER_ROWS = [  # (request, the key named, a fragment) on the cluster SINFO describes; None: it fits
    (dict(partition=None, cpus_per_task=1, mem_gb=4), None, ""),
    (dict(partition="gpu", cpus_per_task=1, mem_gb=4, gpus_per_node=2), None, ""),
    (dict(partition="nope", cpus_per_task=1, mem_gb=4), "partition", "big, debug, gpu"),
    (dict(partition=None, cpus_per_task=1, mem_gb=4, gpus_per_node=1), "gpus_per_node", "partitions that can: gpu"),
    (dict(partition=None, cpus_per_task=32, mem_gb=4), "cpus_per_task", "at most 8 CPUs"),
    (dict(partition=None, cpus_per_task=1, mem_gb=32), "mem_gb", "partitions that can: big, gpu"),
    (dict(partition=None, cpus_per_task=1, mem_gb=4, timeout_min=600), "timeout_min", "at most 60 minutes"),
    (dict(partition="big", cpus_per_task=8, mem_gb=4), "cpus_per_task", "at most 4 CPUs"),
    (dict(partition="gpu", cpus_per_task=1, mem_gb=4, gpus_per_node=4), "gpus_per_node", "at most 2 GPUs"),
]


@pytest.mark.parametrize("request_, key, fragment", CLUSTER_ROWS)
def test_a_cluster_request_that_cannot_run_names_its_key_and_what_the_cluster_offers(request_, key, fragment, monkeypatch):
    from nnexp.errors import ConfigError
    from nnexp.hydra_integration import slurm

    monkeypatch.setattr(slurm, "_run", lambda *command: SINFO if "-N" in command else "up\n")
    if key is None:
        slurm.check_request(**request_)
        return
    with pytest.raises(ConfigError) as error:
        slurm.check_request(**request_)
    assert error.value.key == f"hydra.launcher.{key}" and fragment in str(error.value) and "\n" not in str(error.value)


LAUNCHER_SETTING_ROWS = [  # (setting, value, what the line says is allowed)
    ("timeout_min", 0, "a positive whole number of minutes"),
    ("timeout_min", -5, "a positive whole number of minutes"),
    ("timeout_min", "abc", "a positive whole number of minutes"),
    ("timeout_min", 1.5, "a positive whole number of minutes"),
    ("pending_timeout_s", 0, "a positive number of seconds (.inf in a file, inf on the command line: wait for ever)"),
    ("pending_timeout_s", "soon", "a positive number of seconds"),
    ("poll_s", -1, "a positive number of seconds"),
    ("jobs_per_task", 0, "a positive whole number, or null"),
    ("cpus_per_task", "many", "a positive whole number"),
]


@pytest.mark.parametrize("setting, value, fragment", LAUNCHER_SETTING_ROWS)
def test_a_bad_cluster_launcher_setting_is_one_line_naming_it(setting, value, fragment):
    from nnexp.errors import ConfigError
    from nnexp.hydra_integration.cluster_launcher import ClusterLauncher

    with pytest.raises(ConfigError) as error:
        ClusterLauncher(cluster="local", **{setting: value})
    assert error.value.key == f"hydra.launcher.{setting}" and fragment in str(error.value) and "\n" not in str(error.value)
    for minutes in (1, "60", 60.0):  # a number, or digits from an environment variable (${oc.env:...})
        assert ClusterLauncher(cluster="local", timeout_min=minutes, pending_timeout_s="inf").timeout_min == int(minutes)


LIVE_CLUSTER_ROWS = [  # on the local one-node SLURM cluster (no GPUs, partition "debug" or as it says)
    (["hydra.launcher.gpus_per_node=1"], "hydra.launcher.gpus_per_node=1"),
    (["hydra.launcher.partition=nope"], "partitions sinfo lists"),
    (["hydra.launcher.mem_gb=100000"], "hydra.launcher.mem_gb=100000"),
]


@pytest.mark.server
@pytest.mark.xdist_group("slurm")
@pytest.mark.parametrize("overrides, fragment", LIVE_CLUSTER_ROWS)
def test_a_live_cluster_refuses_what_it_cannot_run_in_one_line(overrides, fragment, tmp_path, slurm_cluster):
    import subprocess

    env = {**slurm_cluster, "HYDRA_FULL_ERROR": "0"}
    done = subprocess.run([sys.executable, "-m", "nnexp.cli", "-m", "data=iris", "seed=0,1", "launcher=slurm", *FAST,
                           *overrides], cwd=tmp_path, env=env, text=True, capture_output=True)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and fragment in lines[0], done.stderr[-3000:]


GIB = 2**30
BLOCK = {"filters": 8, "kernel": 3, "padding": 1, "pool": 2}
GPU_ROWS = [  # (model, input shape, batch rows, the GPU it trains on, the GPU's free bytes, the key named; None: it fits)
    ("mlp", [100], (784,), 200, 0, 8 * GIB, None),
    ("mlp", [100000, 100000], (784,), 200, 0, 8 * GIB, "model.hidden_sizes"),
    ("mlp", [100], (784,), 10**8, 0, 8 * GIB, "batch_size"),
    ("mlp", [100], (784,), 10**8, None, 1, None),  # a run on the CPU: the GPU's memory is not its limit
    ("cnn", [64], (28, 28), 128, 0, 1 * GIB, None),
    ("cnn", [64], (28, 28), 10**6, 1, 1 * GIB, "batch_size"),
    ("cnn", [200000], (28, 28), 2, 0, 1 * GIB, "model.hidden_sizes"),
    ("cnn_wide", [64], (28, 28), 1, 0, 2**20, "model.blocks"),
]


@pytest.mark.parametrize("kind, hidden, shape, rows, cuda, cuda_free, key", GPU_ROWS)
def test_a_network_too_large_for_its_gpus_free_memory_names_the_setting_to_change(kind, hidden, shape, rows, cuda,
                                                                                     cuda_free, key):
    from functools import partial

    from nnexp.errors import ConfigError
    from nnexp.models.cnn import CNN
    from nnexp.models.mlp import MLP
    from nnexp.resources import check_fits

    blocks = [BLOCK] * 2 if kind == "cnn" else [{**BLOCK, "filters": 4096, "pool": 0}] * 2 if kind == "cnn_wide" else None
    model = partial(MLP, hidden_sizes=hidden) if blocks is None else partial(CNN, blocks=blocks, hidden_sizes=hidden)
    if key is None:
        check_fits(model, shape, 10, rows, cuda, free=2**50, cuda_free=cuda_free)
        return
    with pytest.raises(ConfigError) as error:
        check_fits(model, shape, 10, rows, cuda, free=2**50, cuda_free=cuda_free)
    message = str(error.value)
    assert error.value.key == key and "\n" not in message
    assert f"cuda:{cuda}" in message and "trainer.accelerator=cpu" in message and "GiB is free" in message


@pytest.mark.parametrize("trainer, gpu_present, index", [
    ({"accelerator": "cpu", "devices": 1}, True, None),
    ({"accelerator": "auto", "devices": 1}, False, None),
    ({"accelerator": "auto", "devices": 1}, True, 0),
    ({"accelerator": "gpu", "devices": [2]}, True, 2),
    ({"accelerator": "cuda", "devices": "1,3"}, True, 1),
    ({"accelerator": "gpu", "devices": "auto"}, True, 0),
    ({"accelerator": "mps", "devices": 1}, True, None),
])
def test_the_gpu_a_run_trains_on_is_the_one_whose_memory_is_checked(trainer, gpu_present, index, monkeypatch):
    import torch

    from nnexp.resources import cuda_index

    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu_present)
    assert cuda_index(trainer) == index


OLD_STYLE_PARTIAL = "_target_: functools.partial\n_args_:\n  - _target_: hydra.utils.get_method\n    path: torch.optim.SGD\nlr: 0.1\n"
ENV_ROWS = [  # (variable, value, the user's files, the command): the same outcome with the variable set as without it
    ("HYDRA_FULL_ERROR", "0", {}, ["optim.lrr=0.1", *VALIDATE]),
    ("SELF_WARNING_AS_ERROR", "1", {"conf/mine.yaml": "defaults:\n  - train\nseed: 1\n"},
     ["--config-dir", "{tmp}/conf", "--config-name", "mine", *VALIDATE]),
    ("HYDRA_DEPRECATION_WARNINGS_AS_ERRORS", "1", {"conf/optim/old.yaml": OLD_STYLE_PARTIAL},
     ["--config-dir", "{tmp}/conf", "optim=old", "data=iris", "trainer.max_epochs=1", *FAST]),
    ("HYDRA_MAIN_MODULE", "elsewhere.main", {}, VALIDATE),  # the job's name: its log file's
    ("OC_CAUSE", "1", {"conf/experiment/mine.yaml": EXP + "optim:\n  lr: ${nope}\n"},  # kept: it changes tracebacks only
     ["--config-dir", "{tmp}/conf", "experiment=mine", *VALIDATE]),
]


def cli_exit_code(command: list[str], tmp_path: Path, monkeypatch) -> int:
    """The exit code of ``nnexp COMMAND`` run in this process, ``{tmp}`` standing for ``tmp_path``."""
    GlobalHydra.instance().clear()
    monkeypatch.setattr(sys, "argv", ["nnexp", *(arg.replace("{tmp}", str(tmp_path)) for arg in command)])
    try:
        cli.main()
    except SystemExit as exit:
        return exit.code or 0
    return 0


def outcome(command: list[str], tmp_path: Path, folder: str, monkeypatch, capsys) -> tuple:
    """(exit code, stderr lines, files written) of ``nnexp COMMAND`` run in ``tmp_path/folder``, dates and times as D and T."""
    import re

    (tmp_path / folder).mkdir()
    monkeypatch.chdir(tmp_path / folder)
    code = cli_exit_code(command, tmp_path, monkeypatch)
    def undated(text: str) -> str:
        return re.sub(r"\d\d-\d\d-\d\d", "T", re.sub(r"\d{4}-\d\d-\d\d", "D", text))
    lines = [undated(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    files = {undated(str(path.relative_to(tmp_path / folder))) for path in (tmp_path / folder).rglob("*")}
    return code, lines, files


@pytest.mark.parametrize("variable, value, files, command", ENV_ROWS, ids=[row[0] for row in ENV_ROWS])
def test_hydras_environment_variables_change_no_outcome(variable, value, files, command, tmp_path, monkeypatch, capsys):
    from nnexp.errors import HYDRA_ENVIRONMENT

    for name in {*HYDRA_ENVIRONMENT, variable}:
        monkeypatch.delenv(name, raising=False)  # the CLI sets them for its process: put back after
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    without = outcome(command, tmp_path, "without", monkeypatch, capsys)
    monkeypatch.setenv(variable, value)
    assert outcome(command, tmp_path, "with", monkeypatch, capsys) == without


def test_the_python_api_refuses_a_name_from_a_users_file_before_any_folder_is_made(tmp_path, monkeypatch):
    import nnexp
    from nnexp.errors import NnexpError

    (tmp_path / "conf" / "experiment").mkdir(parents=True)
    (tmp_path / "conf" / "experiment" / "mine.yaml").write_text(EXP + "task_name: ../../api_z\n")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    with pytest.raises(NnexpError, match="task_name=../../api_z would write outside"):
        nnexp.run(f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "experiment=mine", *VALIDATE)
    assert list((tmp_path / "work").iterdir()) == [] and not (tmp_path / "api_z").exists()


def test_a_batch_too_large_for_this_machines_memory_names_batch_size():
    from functools import partial

    from nnexp.errors import ConfigError
    from nnexp.models.mlp import MLP
    from nnexp.resources import check_fits

    with pytest.raises(ConfigError) as error:
        check_fits(partial(MLP, hidden_sizes=[100]), (784,), 10, 10**8, free=8 * GIB)
    assert error.value.key == "batch_size" and "smaller batch_size" in str(error.value)
    with pytest.raises(ConfigError) as error:
        check_fits(partial(MLP, hidden_sizes=[10**5, 10**5]), (784,), 10, 200, free=8 * GIB)
    assert error.value.key == "model.hidden_sizes"
