"""The warm server: imports torch, Lightning, Hydra and nnexp once, then forks a child per command.

Started by the client (``python -m nnexp.warm.server SOCKET READY_FD``) in its own session, with
the socket's private folder as its working directory. It holds a lock beside the socket for its
whole life (one server per socket), writes one byte to ``READY_FD`` once it can serve, and runs
single-threaded (forking a process with other threads running is not safe). Each accepted
connection from this user (its uid is checked) carries the command: its arguments, working
directory, environment and import path, and the caller's stdin, stdout and stderr as file
descriptors. The forked child takes all of them and runs the command as ``nnexp`` would, to a
normal interpreter exit; the server sends the caller the child's pid, then how it ended.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import importlib
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
from pathlib import Path

from nnexp.warm import DEFAULT_IDLE_SECONDS

# What a command imports before it trains: the time a warm command saves.
PRELOAD = ("torch", "pytorch_lightning", "hydra", "omegaconf", "sklearn.datasets", "rich.console",
           "nnexp.command", "nnexp.runner", "nnexp.hydra_integration.app", "nnexp.plan", "nnexp.fit", "nnexp.record",
           "nnexp.job", "nnexp.checks", "nnexp.claims", "nnexp.progress", "nnexp.provenance")
HEADER = struct.Struct("!Q")  # the request's length, in front of its JSON
REQUEST_SECONDS = 10.0  # a request is sent at once: one that takes longer is dropped


def framed(request: dict) -> bytes:
    """A request as it travels: its JSON's length, then the JSON."""
    payload = json.dumps(request).encode()
    return HEADER.pack(len(payload)) + payload


def receive_request(connection: socket.socket) -> tuple[dict, list[int]]:
    """A command's request and the file descriptors that came with it."""
    data, fds, _, _ = socket.recv_fds(connection, 1 << 16, 3)
    while len(data) < HEADER.size or len(data) < HEADER.size + HEADER.unpack_from(data)[0]:
        more = connection.recv(1 << 16)
        if not more:
            raise ConnectionError("the client left mid-request")
        data += more
    (length,) = HEADER.unpack_from(data)
    return json.loads(data[HEADER.size : HEADER.size + length]), list(fds)


def peer_uid(connection: socket.socket) -> int:
    """The connected process's user id (Linux's SO_PEERCRED)."""
    _, uid, _ = struct.unpack("3i", connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return uid


def become_command(request: dict, fds: list[int]) -> None:
    """In the forked child (the server's descriptors closed): take the caller's streams, folder,
    environment, import path and arguments, and run ``nnexp``'s command. Never returns: the
    command's SystemExit (or its uncaught exception) ends this process with the status a fresh
    one would end with (:func:`end_command`). Its standard streams are made as the interpreter makes them at start-up: line
    by line on a terminal (stderr always), in blocks otherwise, unbuffered with PYTHONUNBUFFERED;
    the encoding is the server's (the locale is part of its fingerprint)."""
    signal.set_wakeup_fd(-1)
    for number in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for target, fd in zip((0, 1, 2), fds):
        os.dup2(fd, target)
        os.close(fd)
    streams = []
    for fd, mode, like in ((0, "r", sys.__stdin__), (1, "w", sys.__stdout__), (2, "w", sys.__stderr__)):
        stream = open(fd, mode, buffering=-1, encoding=like.encoding, errors=like.errors, closefd=False)
        if mode == "w":
            line = os.isatty(fd) or fd == 2
            stream.reconfigure(line_buffering=line, write_through=bool(request["env"].get("PYTHONUNBUFFERED")))
        streams.append(stream)
    sys.stdin, sys.stdout, sys.stderr = sys.__stdin__, sys.__stdout__, sys.__stderr__ = streams
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = list(request["argv"])
    sys.path[0] = request["path0"]
    import numpy

    numpy.random.seed()  # a fresh process draws numpy's global state from the OS (random reseeds itself at fork)
    from nnexp.command import run

    try:
        run()
        status = 0
    except SystemExit as ended:
        status = exit_status(ended)
    except KeyboardInterrupt:  # as a fresh process: its traceback, then death by SIGINT (a shell loop stops)
        sys.excepthook(*sys.exc_info())
        end_command(0, killed_by=signal.SIGINT)
    except BaseException:  # noqa: BLE001  (a bug: reported as Python reports an uncaught exception)
        sys.excepthook(*sys.exc_info())
        status = 1
    end_command(status)


def exit_status(ended: SystemExit) -> int:
    """The status Python exits with for ``SystemExit(code)``, printing a message code as it does."""
    if ended.code is None:
        return 0
    if isinstance(ended.code, int):
        return ended.code & 0xFF if -(2**63) <= ended.code < 2**63 else 255
    print(ended.code, file=sys.stderr)
    return 1


def end_command(status: int, killed_by: int | None = None) -> None:
    """End the forked command as the interpreter ends: its non-daemon threads joined, its exit
    handlers run (logging's flush among them), its streams flushed (120 where stdout cannot be,
    as Python), each step reported and passed over if it fails; but without tearing down the
    server's imports, which took 0.37-0.44 s a command here (torch's and Lightning's modules and
    objects, copied on write page by page) against 0.07 s for this. ``killed_by``: end by that
    signal instead, as an uncaught KeyboardInterrupt ends Python."""
    import atexit
    import threading

    try:
        for step in (threading._shutdown, atexit._run_exitfuncs):  # what Py_Finalize does first  # noqa: SLF001
            try:
                step()
            except BaseException:  # noqa: BLE001  (Python reports it and goes on)
                sys.excepthook(*sys.exc_info())
        for stream in dict.fromkeys((sys.stdout, sys.__stdout__, sys.stderr, sys.__stderr__)):
            try:
                if stream is not None:
                    stream.flush()
            except (OSError, ValueError) as error:  # a closed pipe
                if stream in (sys.stdout, sys.__stdout__):
                    status = 120
                    with contextlib.suppress(OSError, ValueError):
                        print(f"Exception ignored on flushing sys.stdout:\n{type(error).__name__}: {error}", file=sys.__stderr__)
        if killed_by is not None:
            signal.signal(killed_by, signal.SIG_DFL)
            os.kill(os.getpid(), killed_by)
    finally:
        os._exit(status)


class Server:
    """The accept loop: one forked child per command; a child's end is reported to its caller."""

    def __init__(self, listener: socket.socket, lock_fd: int, idle_seconds: float):
        self.listener, self.lock_fd, self.idle_seconds = listener, lock_fd, idle_seconds
        self.selector = selectors.DefaultSelector()
        self.children: dict[int, socket.socket] = {}  # pid -> its caller's connection
        self.stopping = False
        self.started, self.served = time.monotonic(), 0
        self.wakeup_read, self.wakeup_write = os.pipe()
        for fd in (self.wakeup_read, self.wakeup_write):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(self.wakeup_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # its byte on the wakeup pipe is what counts
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        self.selector.register(listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wakeup_read, selectors.EVENT_READ, "children")

    def holdings(self) -> str:
        """What this server holds, for ``nnexp-warm status``: its imports, environment, age and load."""
        from importlib.metadata import version

        packages = ", ".join(f"{name} {version(name)}" for name in ("torch", "pytorch-lightning", "hydra-core", "nnexp"))
        nnexp_folder = Path(sys.modules["nnexp"].__file__).parent
        minutes = (time.monotonic() - self.started) / 60
        return (f"holds {packages} loaded (python {sys.executable}, nnexp from {nnexp_folder}); up {minutes:.0f} min, "
                f"exits after {self.idle_seconds:g} s idle; {self.served} commands served, {len(self.children)} running")

    def serve(self) -> None:
        while not (self.stopping and not self.children):
            events = self.selector.select(None if self.children or self.stopping else self.idle_seconds)
            if not events and not self.children:
                return  # idle
            for key, _ in events:
                if key.data == "accept":
                    self.accept()
                elif key.data == "children":
                    while True:
                        try:
                            if not os.read(self.wakeup_read, 512):
                                break
                        except BlockingIOError:
                            break
                    self.reap()
                else:  # a caller's connection: it hung up (killed?) while its command runs
                    self.hang_up(key.data)

    def accept(self) -> None:
        try:
            connection, _ = self.listener.accept()
        except BlockingIOError:
            return
        try:
            if peer_uid(connection) != os.getuid():
                connection.close()  # another user's process: never served
                return
            connection.settimeout(REQUEST_SECONDS)  # a caller stopped mid-request must not stall the others
            request, fds = receive_request(connection)
            connection.settimeout(None)
        except (OSError, ValueError, ConnectionError):
            connection.close()
            return
        if request.get("stop") or request.get("status"):
            for fd in fds:
                os.close(fd)
            answer = f"stopping {os.getpid()}" if request.get("stop") else f"serving {os.getpid()} | {self.holdings()}"
            connection.sendall(f"{answer}\n".encode())
            connection.close()
            if request.get("stop"):
                self.stop()
            return
        if self.stopping or len(fds) != 3:
            for fd in fds:
                os.close(fd)
            connection.close()  # the caller runs the command itself
            return
        pid = os.fork()
        if pid == 0:
            self.close_in_child(connection)
            become_command(request, fds)
        for fd in fds:
            os.close(fd)
        self.served += 1
        self.children[pid] = connection
        self.selector.register(connection, selectors.EVENT_READ, pid)
        try:
            connection.sendall(f"{pid}\n".encode())
        except OSError:
            self.hang_up(pid)

    def close_in_child(self, connection: socket.socket) -> None:
        """A forked child keeps none of the server's descriptors (closed through their objects,
        so that no finaliser closes a number the command has reused since)."""
        for sock in (self.listener, connection, *self.children.values()):
            sock.close()
        self.selector.close()
        for fd in (self.lock_fd, self.wakeup_read, self.wakeup_write):
            os.close(fd)

    def reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            connection = self.children.pop(pid, None)
            if connection is None:
                continue
            self.forget(connection)
            ending = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit {os.waitstatus_to_exitcode(status)}"
            try:
                connection.sendall(f"{ending}\n".encode())
            except OSError:
                pass
            connection.close()

    def hang_up(self, pid: int) -> None:
        """The caller left before its command ended: the command gets SIGHUP, as when a terminal closes."""
        connection = self.children.get(pid)
        if connection is not None:
            self.forget(connection)
            try:
                os.kill(pid, signal.SIGHUP)
            except ProcessLookupError:
                pass

    def forget(self, connection: socket.socket) -> None:
        """Stop watching a caller's connection (once: it may have hung up before its command ended)."""
        if connection in {key.fileobj for key in self.selector.get_map().values()}:
            self.selector.unregister(connection)

    def stop(self) -> None:
        """Take no more commands (the socket goes); the loop ends when the running ones have."""
        if not self.stopping:
            self.stopping = True
            self.selector.unregister(self.listener)
            Path(self.listener.getsockname()).unlink(missing_ok=True)
            self.listener.close()


def main(argv: list[str] | None = None) -> None:
    """``python -m nnexp.warm.server SOCKET READY_FD``."""
    socket_path, ready_fd = Path((argv or sys.argv)[1]), int((argv or sys.argv)[2])
    lock_fd = os.open(socket_path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # another server has this socket: the client connects to it
    socket_path.unlink(missing_ok=True)  # a server that died left it; the lock says none is running
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(socket_path))
    listener.listen(64)
    listener.setblocking(False)
    # Only imports: torch's OpenMP pool starts at its first parallel op, which never runs here
    # (a pool started before fork would hang the child's); OpenBLAS's idle pools (numpy's and
    # scipy's) re-make themselves in a forked child.
    for name in PRELOAD:
        importlib.import_module(name)
    # The imports out of the collector's reach, as a command freezes them at its end: a child's
    # exit (a config error's too) skips collecting them (~1 s), and its pages stay shared.
    gc.freeze()
    idle = float(os.environ.get("NNEXP_WARM_IDLE", DEFAULT_IDLE_SECONDS))
    server = Server(listener, lock_fd, idle)
    server_pid = os.getpid()
    try:
        os.write(ready_fd, b"1")
    except BrokenPipeError:  # the client that started it did not wait (its command ran without it)
        pass
    os.close(ready_fd)
    try:
        server.serve()
    finally:
        if os.getpid() == server_pid and not server.stopping:  # not in a child, whose command unwinds through here
            socket_path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
