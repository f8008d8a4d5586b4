"""The thin client: hand a command to the warm server (starting one if needed) and end as it ends."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from nnexp.warm import DEFAULT_IDLE_SECONDS, requested
from nnexp.warm.identity import MAX_SOCKET_PATH, UnsafeFolder, fingerprint, private_folder
from nnexp.warm.server import framed

# Signals the shell's terminal sends the client (its foreground job), passed on to the command.
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH)


def note(message: str) -> None:
    print(f"nnexp: NNEXP_WARM: {message}; running without the warm process", file=sys.stderr)


def socket_path() -> Path | None:
    """This user's and this environment's server socket, or None (with a note) when there is none to use."""
    try:
        folder = private_folder()
    except (OSError, UnsafeFolder) as error:
        note(str(error))
        return None
    path = folder / f"{fingerprint()}.sock"
    if len(str(path)) > MAX_SOCKET_PATH:
        note(f"the socket path {path} is too long (set NNEXP_WARM_DIR to a shorter folder)")
        return None
    return path


NOTICE = ("nnexp: starting a warm nnexp process (torch and Lightning loaded once, so later commands start fast; "
          "it exits after {minutes:g} idle minutes): `nnexp-warm status` shows it, NNEXP_WARM=0 turns it off")


def announce_once(folder: Path) -> None:
    """The warm process's one-line introduction, on stderr, the first time it starts by default for this user."""
    if requested():
        return
    marker = folder / "introduced"
    try:
        with open(marker, "x"):
            pass
    except OSError:  # told before (or the folder is read-only: say nothing rather than every time)
        return
    print(NOTICE.format(minutes=float(os.environ.get("NNEXP_WARM_IDLE", DEFAULT_IDLE_SECONDS)) / 60), file=sys.stderr)


def connect(path: Path) -> socket.socket | None:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(str(path))
    except OSError:
        connection.close()
        return None
    return connection


def start_server(path: Path, wait: bool) -> None:
    """Start a server for ``path``; ``wait``: until it serves (or has exited: another server has
    the socket, or its imports failed). Its working directory is the private folder, the first
    entry of its import path."""
    ready_read, ready_write = os.pipe()
    try:
        subprocess.Popen(
            [sys.executable, "-m", "nnexp.warm.server", str(path), str(ready_write)], cwd=path.parent,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(ready_write,), start_new_session=True,
        )
    finally:
        os.close(ready_write)
    with os.fdopen(ready_read, "rb") as ready:
        if wait:
            ready.read(1)  # one byte once it serves; end of file if it exited


def run_in_server(argv: list[str]) -> int | None:
    """Run the command ``argv`` (``sys.argv``: ``nnexp`` and its arguments) in the warm server
    and return its exit status; None when no server could take it (the caller runs it itself)."""
    try:
        for fd in (0, 1, 2):
            os.fstat(fd)
        request = framed({"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ), "path0": sys.path[0]})
    except OSError:  # a closed standard stream, or a deleted working directory: a fresh process says what
        return None
    path = socket_path()
    if path is None:
        return None
    connection = connect(path)
    if connection is None:  # this command runs as it is while the server starts for the next ones
        announce_once(path.parent)
        start_server(path, wait=False)
        return None
    with connection:
        return exchange(connection, request)


def exchange(connection: socket.socket, request: bytes) -> int | None:
    """Send the request with this process's stdin, stdout and stderr; pass signals on to the
    command until it ends; return its exit status (or end by its signal, as it did)."""
    try:
        sent = socket.send_fds(connection, [request], [0, 1, 2])
        connection.sendall(request[sent:])
        replies = connection.makefile("rb")
        first = replies.readline()
    except KeyboardInterrupt:  # Ctrl-C before the command started: the server hangs it up when this client goes
        print("interrupted", file=sys.stderr)
        return 130
    if not first.strip().isdigit():  # the server stopped before taking it
        return None
    pid = int(first)
    previous = {number: signal.signal(number, lambda number, _: pass_on(pid, number)) for number in FORWARDED}
    previous[signal.SIGTSTP] = signal.signal(signal.SIGTSTP, lambda *_: suspend(pid))
    previous[signal.SIGCONT] = signal.signal(signal.SIGCONT, lambda *_: pass_on(pid, signal.SIGCONT))
    try:
        ending = replies.readline().decode().split()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if len(ending) != 2:
        print(f"nnexp: the warm server ended without the command's exit status (process {pid})", file=sys.stderr)
        return 1
    kind, value = ending[0], int(ending[1])
    if kind == "signal":  # end the same way, so that the shell sees what a fresh process shows
        sys.stdout.flush()
        signal.signal(value, signal.SIG_DFL)
        os.kill(os.getpid(), value)
        return 128 + value
    return value


def pass_on(pid: int, number: int) -> None:
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass


def suspend(pid: int) -> None:
    """Ctrl-Z: stop the command, then this client (the shell's job); ``fg`` continues both."""
    pass_on(pid, signal.SIGSTOP)
    signal.signal(signal.SIGTSTP, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTSTP)
    signal.signal(signal.SIGTSTP, lambda *_: suspend(pid))


def ask(connection: socket.socket, action: str) -> str:
    """A server's answer to ``status`` ("serving PID") or ``stop`` ("stopping PID")."""
    connection.sendall(framed({action: True}))
    return connection.makefile("rb").readline().decode().strip()


def control_main() -> None:
    """``nnexp-warm start`` starts this environment's warm server and waits until it serves;
    ``status`` lists this user's servers; ``stop`` stops them (running commands finish first).
    ``nnexp`` uses the warm process on an interactive terminal (``NNEXP_WARM=0``: never;
    ``NNEXP_WARM=1``: everywhere)."""
    import argparse

    parser = argparse.ArgumentParser(prog="nnexp-warm", description=control_main.__doc__)
    parser.add_argument("action", choices=("start", "status", "stop"))
    action = parser.parse_args().action
    try:
        folder = private_folder()
    except (OSError, UnsafeFolder) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    current = folder / f"{fingerprint()}.sock"
    if action == "start":
        connection = connect(current)
        if connection is None:
            start_server(current, wait=True)
            connection = connect(current)
        if connection is None:
            print("error: the warm server did not start (run the command without NNEXP_WARM to see why)", file=sys.stderr)
            raise SystemExit(1)
        with connection:
            print(f"{current.name}: {ask(connection, 'status').partition(' | ')[0]} (this environment)")
        return
    answered = 0
    for path in sorted(folder.glob("*.sock")):
        connection = connect(path)
        if connection is not None:
            with connection:
                try:
                    reply = ask(connection, action)
                except OSError as error:
                    reply = f"not answering ({error.strerror})"
                reply, _, holds = reply.partition(" | ")
                print(f"{path.name}: {reply}{' (this environment)' if path == current else ''}")
                if holds and action == "status":
                    print(f"  {holds}")
            answered += 1
    if not answered:
        print(f"no warm server in {folder}")
