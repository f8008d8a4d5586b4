"""The warm process: a command it runs behaves as a fresh process (real server, real subprocesses);
on by default on an interactive terminal only."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import termios
from pathlib import Path

import pytest

from nnexp.warm.identity import UnsafeFolder, fingerprint, private_folder

WARM = pytest.mark.xdist_group("warm")  # one worker, so one server for the module
BIN = Path(sys.executable).parent
NNEXP, NNEXP_WARM = str(BIN / "nnexp"), str(BIN / "nnexp-warm")


@pytest.fixture(scope="module")
def warm_env():
    """The environment of a warm command, with this module's own server (started, then stopped by pid)."""
    folder = tempfile.mkdtemp(prefix="nw", dir="/tmp")  # short: socket paths are limited to 107 bytes
    env = {**os.environ, "NNEXP_WARM_DIR": folder}
    env.pop("NNEXP_WARM", None)
    started = subprocess.run([NNEXP_WARM, "start"], env=env, capture_output=True, text=True, check=True)
    pid = int(re.search(r"serving (\d+)", started.stdout).group(1))
    yield {**env, "NNEXP_WARM": "1"}
    subprocess.run([NNEXP_WARM, "stop"], env=env, capture_output=True, check=True)
    try:
        os.kill(pid, signal.SIGKILL)  # if it has not gone yet
    except ProcessLookupError:
        pass
    shutil.rmtree(folder, ignore_errors=True)


def server_pid(env: dict) -> int:
    status = subprocess.run([NNEXP_WARM, "status"], env=env, capture_output=True, text=True, check=True).stdout
    return int(re.search(r"serving (\d+) \(this environment\)", status).group(1))


def run(env: dict, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([NNEXP, *args], env=env, cwd=cwd, capture_output=True, text=True)


@WARM
def test_a_warm_command_runs_in_a_fork_of_the_server_with_the_callers_folder_and_streams(warm_env, tmp_path):
    server = server_pid(warm_env)
    command = subprocess.Popen([NNEXP, "data=iris", "trainer.max_epochs=100000", "plots=false", "print_config=true", "hydra.run.dir=long"],
                               env=warm_env, cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in command.stdout:  # the config tree (print_config=true) is printed before the fit starts
        if "trainer" in line:
            break
    children = Path(f"/proc/{server}/task/{server}/children").read_text().split()
    assert len(children) == 1  # the command is the server's fork, not a fresh interpreter
    child = children[0]
    for fd in (0, 1, 2):  # the caller's own pipes, passed as descriptors
        assert os.readlink(f"/proc/{child}/fd/{fd}") == os.readlink(f"/proc/{command.pid}/fd/{fd}")
    assert os.readlink(f"/proc/{child}/cwd") == str(tmp_path)
    command.send_signal(signal.SIGINT)  # Ctrl-C reaches the client (the terminal's foreground job)
    _, err = command.communicate()
    assert command.returncode == 130 and err.strip().endswith("interrupted")
    assert not Path(f"/proc/{child}").exists()  # reaped by the server before it reported the exit status


@WARM
def test_a_killed_caller_hangs_up_its_command_and_the_server_goes_on(warm_env, tmp_path):
    import select

    server = server_pid(warm_env)
    command = subprocess.Popen([NNEXP, "data=iris", "stopping=none", "trainer.max_epochs=1000000", "plots=false", "print_config=true", "hydra.run.dir=k"],
                               env=warm_env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in command.stdout:
        if "trainer" in line:
            break
    child = int(Path(f"/proc/{server}/task/{server}/children").read_text().split()[0])
    exited = os.pidfd_open(child)  # readable once the child has ended
    command.kill()  # SIGKILL: the client cannot pass anything on
    command.wait()
    select.select([exited], [], [])  # the server saw the caller go and hung up the command (SIGHUP)
    os.close(exited)
    assert server_pid(warm_env) == server  # still serving
    assert run(warm_env, "data=irs", cwd=tmp_path).returncode == 2


@WARM
def test_exit_codes_and_output_are_a_fresh_processs(warm_env, tmp_path):
    cold_env = {key: value for key, value in warm_env.items() if key != "NNEXP_WARM"}
    for args in (["data=iris", "optim.lr=-1"], ["mode=params", "data=digits_images", "model=cnn_small"]):
        warm, cold = run(warm_env, *args, cwd=tmp_path), run(cold_env, *args, cwd=tmp_path)
        assert (warm.returncode, warm.stdout, warm.stderr) == (cold.returncode, cold.stdout, cold.stderr), args
    bad = run(warm_env, "data=iris", "optim.lr=-1", cwd=tmp_path)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "optim.lr" in bad.stderr
    # The caller's environment is the command's: NNEXP_TRACEBACK (read as the command runs) shows the traceback.
    traced = run({**warm_env, "NNEXP_TRACEBACK": "1"}, "data=iris", "optim.lr=-1", cwd=tmp_path)
    assert traced.returncode == 1 and "Traceback (most recent call last)" in traced.stderr and "optim.lr" in traced.stderr


def under_a_terminal(env: dict, args: list[str], cwd: Path, columns: int) -> bytes:
    """What ``nnexp args`` writes to a terminal of ``columns`` columns (a pseudo-terminal)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    process = subprocess.Popen([NNEXP, *args], env={k: v for k, v in env.items() if k not in ("COLUMNS", "NO_COLOR", "TERM")} | {"TERM": "xterm-256color"},
                               cwd=cwd, stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the terminal's last writer has gone
            break
        if not chunk:
            break
        output += chunk
    process.wait()
    os.close(leader)
    return output


@WARM
def test_a_terminal_gets_the_same_colours_and_width(warm_env, tmp_path):
    args = ["mode=params", "data=iris", "model.hidden_sizes=[30,20]"]
    warm = under_a_terminal(warm_env, args, tmp_path, columns=40)  # narrower than the 55-column layer table
    cold = under_a_terminal({**warm_env, "NNEXP_WARM": "0"}, args, tmp_path, columns=40)
    assert b"\x1b[" in warm and warm == cold
    assert max(len(re.sub(r"\x1b\[[0-9;]*m", "", line)) for line in warm.decode().splitlines()) <= 40


@WARM
def test_another_environment_gets_another_server_and_nobody_elses_folder_is_used(warm_env, tmp_path):
    status = subprocess.run([NNEXP_WARM, "status"], env={**warm_env, "OMP_NUM_THREADS": "3"}, capture_output=True, text=True).stdout
    assert "serving" in status and "(this environment)" not in status  # OMP_NUM_THREADS is read at import: not this server
    assert fingerprint({"HOME": "/a"}) == fingerprint({"HOME": "/b"})  # the rest of the environment travels with each command
    assert fingerprint({"OMP_NUM_THREADS": "1"}) != fingerprint({"OMP_NUM_THREADS": "2"})
    open_folder = tmp_path / f"nnexp-warm-{os.getuid()}"
    open_folder.mkdir(mode=0o777)
    open_folder.chmod(0o777)
    with pytest.raises(UnsafeFolder, match="not a folder of this user's alone"):
        private_folder({"NNEXP_WARM_DIR": str(tmp_path)})
    folder = private_folder({"NNEXP_WARM_DIR": warm_env["NNEXP_WARM_DIR"]})
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


@WARM
def test_a_change_to_nnexps_files_or_to_python_changes_the_fingerprint(tmp_path, monkeypatch):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "module.py").write_text("x = 1\n")
    before = fingerprint({}, roots=[package])
    assert fingerprint({}, roots=[package]) == before
    (package / "module.py").write_text("x = 22\n")  # a reinstall or an edit: another size and time
    edited = fingerprint({}, roots=[package])
    assert edited != before
    monkeypatch.setattr(sys, "version", sys.version + " (another build)")
    assert fingerprint({}, roots=[package]) != edited


@WARM
@pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as another user")
def test_another_user_cannot_reach_the_server(warm_env):
    socket_file = next(Path(warm_env["NNEXP_WARM_DIR"], f"nnexp-warm-{os.getuid()}").glob("*.sock"))
    probe = "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])"
    python = shutil.which("python3", path="/usr/bin:/bin")  # one that user nobody may run
    if python is None:
        pytest.skip("no system python3 for user nobody")
    other = subprocess.run([python, "-c", probe, str(socket_file)], user=65534, capture_output=True, text=True)
    assert other.returncode != 0 and "PermissionError" in other.stderr


@WARM
def test_without_nnexp_warm_no_server_is_used_or_started(warm_env, tmp_path):
    folder = tempfile.mkdtemp(prefix="nw", dir="/tmp")
    try:
        env = {k: v for k, v in warm_env.items() if k != "NNEXP_WARM"} | {"NNEXP_WARM_DIR": folder}
        result = run(env, "data=irs", cwd=tmp_path)
        assert result.returncode == 2 and not any(Path(folder).iterdir())
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@WARM
def test_the_first_warm_command_runs_fresh_and_leaves_a_server_for_the_next(warm_env, tmp_path):
    folder = tempfile.mkdtemp(prefix="nw", dir="/tmp")
    env = {**warm_env, "NNEXP_WARM_DIR": folder}
    pid = None
    try:
        first = run(env, "data=irs", cwd=tmp_path)  # no server yet: it answers at once, fresh
        assert first.returncode == 2 and first.stderr.startswith("error: data=irs is not an option")
        pid = server_pid(env)  # the server it started in the background (status waits until it serves)
        second = run(env, "data=irs", cwd=tmp_path)
        assert (second.returncode, second.stderr) == (first.returncode, first.stderr)
        assert server_pid(env) == pid
    finally:
        subprocess.run([NNEXP_WARM, "stop"], env=env, capture_output=True)
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)  # if it has not gone yet
            except ProcessLookupError:
                pass
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("environ, terminals, on", [
    ({}, True, True),
    ({}, False, False),  # a pipe, a file, a cron job
    ({"NNEXP_WARM": "0"}, True, False),
    ({"NNEXP_WARM": "off"}, True, False),
    ({"NNEXP_WARM": "1"}, False, True),
    ({"CI": "true"}, True, False),
    ({"GITHUB_ACTIONS": "true"}, True, False),
    ({"SLURM_JOB_ID": "42"}, True, False),  # inside a SLURM job's step (srun --pty included)
    ({"SLURM_JOB_ID": "42", "NNEXP_WARM": "1"}, False, True),
])
def test_the_warm_process_is_on_by_default_on_an_interactive_terminal_only(environ, terminals, on):
    from nnexp.warm import wanted

    assert wanted(environ, terminals) is on


def test_its_first_default_start_says_what_it_is_once(tmp_path, monkeypatch, capsys):
    from nnexp.warm.client import announce_once

    monkeypatch.delenv("NNEXP_WARM", raising=False)
    monkeypatch.setenv("NNEXP_WARM_IDLE", "600")
    announce_once(tmp_path)
    announce_once(tmp_path)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "warm nnexp process" in lines[0] and "10 idle minutes" in lines[0] and "NNEXP_WARM=0" in lines[0]
    monkeypatch.setenv("NNEXP_WARM", "1")  # asked for by name: nothing to introduce
    announce_once(tmp_path / "elsewhere")
    assert not capsys.readouterr().err


@WARM
def test_status_shows_what_the_server_holds(warm_env, tmp_path):
    assert run(warm_env, "data=irs", cwd=tmp_path).returncode == 2  # one command served
    status = subprocess.run([NNEXP_WARM, "status"], env=warm_env, capture_output=True, text=True, check=True).stdout
    assert re.search(r"serving \d+ \(this environment\)\n  holds torch [^,]+, pytorch-lightning", status)
    assert re.search(r"exits after [\d.]+ s idle; [1-9]\d* commands served, 0 running", status) and sys.executable in status


@WARM
def test_a_terminal_command_uses_the_warm_server_without_being_asked(warm_env, tmp_path):
    env = {k: v for k, v in warm_env.items() if k not in ("NNEXP_WARM", *__import__("nnexp.warm").warm.CI_VARIABLES)}
    served = int(re.search(r"(\d+) commands served", subprocess.run([NNEXP_WARM, "status"], env=env, capture_output=True, text=True).stdout).group(1))
    output = under_a_terminal(env, ["data=irs"], tmp_path, columns=80)
    assert b"data=irs is not an option" in output
    status = subprocess.run([NNEXP_WARM, "status"], env=env, capture_output=True, text=True).stdout
    assert f"{served + 1} commands served" in status
