"""Every command README.md and scripts/README.md show runs as written.

nnexp commands (README.md's fenced examples and tables, scripts/README.md's fenced examples) run
in-process, each in a fresh folder, shortened only in length (epochs, iterations, folds, seeds,
trials) and made quiet; placeholders stand for real places (the user's CSV file, data folder,
config folder, a run or sweep dir, a database server). Commands of scripts/ (benchmarks take
minutes) are checked without running them: the script exists, its `--help` works, and the
command's own arguments parse; a shell script must pass `bash -n`."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SCRIPTS_README = ROOT / "scripts" / "README.md"
PROGRAMS = ("nnexp", "nnexp-params", "nnexp-plot", "nnexp-summary")
ENV_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")


@dataclass(frozen=True)
class ReadmeCommand:
    line: int
    section: str
    words: tuple[str, ...]  # shell words, environment assignments first

    @property
    def program(self) -> str:
        return next(word for word in self.words if not ENV_ASSIGNMENT.match(word))

    @property
    def text(self) -> str:
        return shlex.join(self.words)


def commands_in(text: str, line: int, section: str) -> list[ReadmeCommand]:
    """The nnexp commands of one shell line (``a && b``, ``export X=...`` kept as an assignment)."""
    found = []
    for part in text.split("&&"):
        if not re.match(r"\s*(export\s+|[A-Z_][A-Z0-9_]*=\S*\s+)*nnexp(-[a-z]+)?(\s|$)", part):
            continue  # not a command (output, a diagram's lines, another program)
        words = shlex.split(part, comments=True)
        if words[:1] == ["export"]:
            words = words[1:]
        names = [w for w in words if not ENV_ASSIGNMENT.match(w)]
        if names and names[0] in PROGRAMS:
            found.append(ReadmeCommand(line, section, tuple(words)))
    return found


def table_commands(row: str, line: int, section: str) -> list[ReadmeCommand]:
    """A table row's commands: backticked spans that start with a program, and the override-only
    spans that follow one (``nnexp optim=sgd_torch`` / ``optim=adam_torch`` means two commands)."""
    found = []
    for cell in row.strip().strip("|").split("|"):
        spans = re.findall(r"`([^`]+)`", cell)
        if not spans or spans[0].split()[0] not in PROGRAMS:
            continue
        for span in spans:
            words = shlex.split(span)
            if words[0] in PROGRAMS and words[1:] in ([], ["-m"]):
                continue  # a program named in prose, not a command
            if words[0] in PROGRAMS:
                found.append(ReadmeCommand(line, section, tuple(words)))
            elif all("=" in w and "..." not in w for w in words):
                found.append(ReadmeCommand(line, section, ("nnexp", *words)))
    return found


def fenced_lines(path: Path):
    """(line number, section, text, fenced) for each line of a markdown file."""
    section, fenced = "", False
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.startswith("```"):
            fenced = not fenced
            continue
        if not fenced and line.startswith("#"):
            section = line.lstrip("#").strip()
        yield number, section, line, fenced


def readme_commands(path: Path = README, tables: bool = True) -> list[ReadmeCommand]:
    """The nnexp commands of a markdown file's fenced examples (and of its tables)."""
    commands = []
    for number, section, line, fenced in fenced_lines(path):
        if fenced:
            commands += commands_in(line, number, section)
        elif tables and line.startswith("|"):
            commands += table_commands(line, number, section)
    return commands


# scripts/README.md's tables describe benchmark variants; its commands are its fenced examples.
COMMANDS = readme_commands() + readme_commands(SCRIPTS_README, tables=False)


def test_the_readmes_python_example_runs(tmp_path, monkeypatch):
    """The Python API section's example, as written (its load of a CLI run dir opens the example's own run)."""
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    code = re.sub(r'nnexp\.load\("outputs/[^"]+"\)', "nnexp.load(run.dir)", block)
    assert code != block and "nnexp.run(" in code and "nnexp.sweep(" in code
    monkeypatch.chdir(tmp_path)
    names: dict = {}
    exec(compile(code, f"{README.name}: the Python example", "exec"), names)
    assert names["run"].status == "ok" and len(names["grid"].summary) == 3 and names["grid"].best.status == "ok"


def test_the_readme_reads_in_ten_minutes():
    """README.md is for users (under 400 lines); benchmark figures live in scripts/README.md."""
    assert len(README.read_text().splitlines()) < 400


def test_the_readme_has_its_commands():
    sections = {c.section for c in COMMANDS}
    assert len(COMMANDS) >= 50 and {"Quickstart", "Running experiments", "Worked commands", "Sweeps", "Optuna studies"} <= sections
    assert all("RUN_OR_SWEEP_DIR" not in c.text for c in COMMANDS)  # placeholders this test knows


SCRIPT_COMMAND = re.compile(r"^\s*(?:(python3?|bash)\s+)?(scripts/[\w.-]+\.(?:py|sh))(?=\s|$)")


@dataclass(frozen=True)
class ScriptCommand:
    file: str  # README.md or scripts/README.md
    line: int
    interpreter: str | None  # python, bash, or None: run as an executable
    script: str  # relative to the repository root
    args: tuple[str, ...]


def script_commands(path: Path) -> list[ScriptCommand]:
    """The commands of scripts/ in a markdown file's fenced examples (``a && b`` split)."""
    found = []
    for number, _, line, fenced in fenced_lines(path):
        for part in line.split("&&") if fenced else ():
            if match := SCRIPT_COMMAND.match(part):
                words = shlex.split(part, comments=True)
                start = 2 if match.group(1) else 1
                found.append(ScriptCommand(str(path.relative_to(ROOT)), number, match.group(1), match.group(2),
                                           tuple(words[start:])))
    return found


SCRIPT_COMMANDS = script_commands(README) + script_commands(SCRIPTS_README)

# Runs each script's main with its command's arguments in one Python process (one torch import for
# all of them); parse_args raises Parsed once the arguments are read, before any benchmark starts.
PARSE_DRIVER = """
import argparse, contextlib, io, json, runpy, sys
class Parsed(Exception):
    pass
parse_args = argparse.ArgumentParser.parse_args
def parse_then_stop(self, args=None, namespace=None):
    parse_args(self, args, namespace)
    raise Parsed
argparse.ArgumentParser.parse_args = parse_then_stop
outcomes = []
for script, args in json.loads(sys.argv[1]):
    sys.argv, sys.path[0], printed = [script, *args], script.rsplit("/", 1)[0], io.StringIO()
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            runpy.run_path(script, run_name="__main__")
        outcome = "finished without parsing its arguments"
    except Parsed:
        outcome = "parsed"
    except SystemExit as stop:
        outcome = f"exit {stop.code}"
    except BaseException as error:
        outcome = f"{type(error).__name__}: {error}"
    outcomes.append([outcome, printed.getvalue()[:3000]])
print(json.dumps(outcomes))
"""


def has_argument_parser(script: str) -> bool:
    return "ArgumentParser(" in (ROOT / script).read_text()


@pytest.fixture(scope="module")
def parsed_scripts() -> dict[tuple[str, ...], tuple[str, str]]:
    """(script, *args) -> (outcome, output) for every Python script command, and each script's --help."""
    runs = {(c.script, *c.args) for c in SCRIPT_COMMANDS if c.script.endswith(".py") and has_argument_parser(c.script)}
    runs |= {(script, "--help") for script, *_ in runs}
    runs = sorted(runs)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", PARSE_DRIVER, json.dumps([[s, list(a)] for s, *a in runs])],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return {run: tuple(outcome) for run, outcome in zip(runs, json.loads(done.stdout.splitlines()[-1]))}


def test_the_readmes_have_their_script_commands():
    scripts = {c.script for c in SCRIPT_COMMANDS}
    assert "scripts/slurm_local.sh" in scripts and "scripts/gpu_check.sh" in scripts
    assert len(SCRIPT_COMMANDS) >= 15


def test_every_benchmark_has_its_section_in_scripts_readme():
    """scripts/README.md: one section per benchmark script, with the command that runs it."""
    text = SCRIPTS_README.read_text()
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    documented = {c.script for c in script_commands(SCRIPTS_README)}
    for script in sorted((ROOT / "scripts").glob("bench_*.py")):
        assert any(line.startswith(f"## {script.name}") for line in headings), f"scripts/README.md has no section for {script.name}"
        assert f"scripts/{script.name}" in documented, f"scripts/README.md shows no command for {script.name}"


@pytest.mark.parametrize("command", [
    pytest.param(c, id=f"{c.file}:L{c.line}-{c.script}-{' '.join(c.args)[:40]}", marks=pytest.mark.xdist_group("scripts"))
    for c in SCRIPT_COMMANDS])
def test_script_command_parses(command, request):
    path = ROOT / command.script
    assert path.is_file(), f"{command.file} line {command.line}: no {command.script}"
    if command.script.endswith(".sh"):
        assert command.interpreter == "bash" or os.access(path, os.X_OK), f"{command.script} is not executable"
        checked = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
        return
    assert command.interpreter in ("python", "python3"), f"{command.file} line {command.line}: run it with python"
    if not has_argument_parser(command.script):
        pytest.skip(f"{command.script} has no argument parser (no --help): only that it exists is checked")
    outcomes = request.getfixturevalue("parsed_scripts")
    help_outcome, help_text = outcomes[(command.script, "--help")]
    assert help_outcome == "exit 0" and "usage:" in help_text, f"{command.script} --help: {help_outcome}\n{help_text}"
    outcome, output = outcomes[(command.script, *command.args)]
    expected = "exit 0" if "--help" in command.args else "parsed"
    assert outcome == expected, f"{command.file} line {command.line}: {command.script} {' '.join(command.args)}: {outcome}\n{output}"


# Length caps: the command keeps its meaning, it just trains less.
CAPS = {"trainer.max_epochs": 2, "max_iter": 5, "optim.max_iter": 10, "cv": 2, "hydra.sweeper.n_trials": 3}
SHORT = {"trainer.max_epochs": "2", "quiet": "true", "logger": "none", "plots": "false"}


def shortened(args: list[str], section: str) -> list[str]:
    """``args`` with length keys capped and quiet defaults added where the command sets none."""
    out, given = [], set()
    for arg in args:
        key, _, value = arg.partition("=")
        given.add(key.lstrip("+"))
        if key in CAPS and value.isdigit():
            arg = f"{key}={min(int(value), CAPS[key])}"
        arg = re.sub(r"range\(0,\s*\d+\)", "range(0,2)", arg)
        out.append(arg)
    if any(a.startswith(("--help", "mode=", "resume=")) for a in out) or any(a.startswith("-") and a != "-m" for a in out):
        return out
    defaults = dict(SHORT)
    if section == "Pictures":
        defaults.pop("plots")  # these commands are about the figures
    if "max_iter" in given or "optim.max_iter" in given:
        defaults.pop("trainer.max_epochs")  # the solver's own budget, capped above
    if "launcher=joblib" in out:
        defaults["hydra.launcher.n_jobs"] = "1"  # one worker process: one torch import on a 2-core machine
    if "trainer=ddp" in out:  # composed, checked and its Trainer built; tests/test_distributed.py trains it (two
        defaults["mode"] = "validate"  # spawned processes against one, ~17 s here)
    if any(a.startswith("sweep=") for a in out):
        defaults["cv"] = "2"  # the presets' own cv=5
    if "sweep=optuna_mlp" in out:
        defaults["hydra.sweeper.n_trials"] = "3"
    return out + [f"{k}={v}" for k, v in defaults.items() if k not in given]


def needs(command: ReadmeCommand) -> str | None:
    """Why this machine cannot run ``command`` as written, or None."""
    import torch

    text = command.text
    gpu_only = "trainer=gpu" in text or ("trainer=ddp" in text and "accelerator=cpu" not in text)
    if gpu_only and not torch.cuda.is_available():
        return "a GPU"
    for package in ("tensorboard", "mlflow"):
        if f"logger={package}" in text and importlib.util.find_spec(package) is None:
            return f"the {package} package"
    return None


def console_script(program: str):
    (entry,) = importlib.metadata.entry_points(group="console_scripts", name=program)
    return entry.load()


def command_param(command: ReadmeCommand):
    marks = []
    if "launcher=slurm" in command.text:
        marks += [pytest.mark.server, pytest.mark.xdist_group("slurm")]
    if "postgresql://" in command.text:
        marks += [pytest.mark.server]
    return pytest.param(command, id=f"L{command.line}-{command.text[:60]}", marks=marks)


class Workspace:
    """A user's folder: my.csv, a data root, my_configs/, and a run and a sweep to point at."""

    def __init__(self, folder: Path, monkeypatch, idx_root: Path):
        self.folder, self.monkeypatch = folder, monkeypatch
        monkeypatch.chdir(folder)
        monkeypatch.setenv("NNEXP_DATA", str(idx_root))

    def write_csv(self, delimiter: str) -> None:
        rng = np.random.default_rng(0)
        x = rng.normal(size=(120, 2))
        label = np.where(x.sum(axis=1) > 0, "yes", "no")
        rows = ["x1,x2,id,label"] + [f"{a:.4f},{b:.4f},{i},{c}" for i, ((a, b), c) in enumerate(zip(x, label))]
        (self.folder / "my.csv").write_text("\n".join(r.replace(",", delimiter) for r in rows) + "\n")

    def write_user_configs(self) -> None:
        folder = self.folder / "my_configs" / "experiment"
        folder.mkdir(parents=True)
        (folder / "mine.yaml").write_text("# @package _global_\ndefaults:\n  - override /data: iris\nmodel:\n  hidden_sizes: [8]\n")

    def run(self, program: str, *args: str) -> None:
        from hydra.core.global_hydra import GlobalHydra

        GlobalHydra.instance().clear()
        self.monkeypatch.setattr(sys, "argv", [program, *args])
        try:
            console_script(program)()
        except SystemExit as stop:
            assert stop.code in (None, 0), f"{shlex.join([program, *args])} exited {stop.code}"
        finally:
            if "joblib" in sys.modules:
                # loky keeps its worker processes for the next call, in the folder they started in:
                # a later test's relative sweep dir would land in this test's folder.
                from joblib.externals.loky import get_reusable_executor

                get_reusable_executor().shutdown(wait=True)

    def sweep_summaries(self) -> list[dict]:
        """The rows of every summary.csv written under this folder."""
        import csv

        return [row for path in self.folder.rglob("summary.csv") for row in csv.DictReader(path.open())]

    def a_run_dir(self) -> str:
        self.run("nnexp", "data=moons", "hydra.run.dir=a_run", "trainer.max_epochs=2", "quiet=true", "plots=false")
        return str(self.folder / "a_run")

    def a_sweep_dir(self) -> str:
        self.run("nnexp", "-m", "hydra.sweep.dir=a_sweep", "data=moons", "model.hidden_sizes=[2],[4]", "trainer.max_epochs=2",
                 "quiet=true", "plots=false")
        return str(self.folder / "a_sweep")


PLACEHOLDER_DIRS = {"RUN_DIR": "a_run_dir", "SWEEP_DIR": "a_sweep_dir"}


@pytest.mark.parametrize("command", [command_param(c) for c in COMMANDS])
def test_readme_command_runs(command, tmp_path, monkeypatch, tiny_idx_root, request):
    if (missing := needs(command)) is not None:
        pytest.skip(f"needs {missing}: {command.text}")
    workspace = Workspace(tmp_path, monkeypatch, tiny_idx_root)
    program_at = command.words.index(command.program)
    args = []
    for word in command.words[program_at + 1 :]:
        word = word.replace("/path/to/data", str(tiny_idx_root)).replace("/shared/", f"{tmp_path}/")
        if "postgresql://" in word:
            word = re.sub(r"postgresql://\S+", request.getfixturevalue("postgres_url"), word)
            if command.program == "nnexp":  # the server is the session's: other tests' trials are in its study
                args.append("hydra.sweeper.n_trials_scope=run")
        if re.search(r"multirun/\d{4}-\d\d-\d\d/\d\d-\d\d-\d\d/?", word):
            word = re.sub(r"multirun/\d{4}-\d\d-\d\d/\d\d-\d\d-\d\d/?", workspace.a_sweep_dir(), word)
        for placeholder, make in PLACEHOLDER_DIRS.items():
            if placeholder in word:
                word = word.replace(placeholder, getattr(workspace, make)())
        args.append(word)
    for word in command.words[:program_at]:
        name, _, value = word.partition("=")
        monkeypatch.setenv(name, value.replace("/path/to/data", str(tiny_idx_root)))
    if "data.path=my.csv" in args:
        workspace.write_csv(";" if any(a.startswith("data.delimiter=") and ";" in a for a in args) else ",")
    if "my_configs" in args:
        workspace.write_user_configs()
    if "launcher=slurm" in args:
        args = [a.replace("partition=gpu", "partition=debug") for a in args]  # the local cluster's one partition
        for name, value in request.getfixturevalue("slurm_cluster").items():
            monkeypatch.setenv(name, value)
    if command.program == "nnexp":
        args = shortened(args, command.section)
    if "--study" in args:  # a study to summarise, made the way the README makes one
        storage = args[args.index("--storage") + 1]
        workspace.run("nnexp", "-m", "sweep=optuna_mlp", f"hydra.sweeper.storage={storage}",
                      "hydra.sweeper.n_trials=2", "cv=2", "trainer.max_epochs=2", "quiet=true", "plots=false", "logger=none")
    workspace.run(command.program, *args)
    if "-m" in args:  # every grid point of a sweep finished
        rows = workspace.sweep_summaries()
        assert rows and all(row["status"] == "ok" for row in rows), rows
