"""Which server a command may use: a folder of the user's alone, and a fingerprint of the environment."""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import tempfile
from pathlib import Path

# Environment variables read while modules are imported (the server imports them once for all
# its commands): the interpreter's, the native libraries' thread pools and devices, the locale
# (stdio's encoding). Commands with other values get another server. The rest of the environment
# travels with each command.
IMPORT_TIME_VARIABLES = ("PYTHON", "LD_", "OMP_", "MKL_", "KMP_", "OPENBLAS_", "GOTO", "CUDA_", "HIP_", "ROCR_",
                         "TORCH", "PYTORCH_", "NCCL_", "LANG", "LC_", "NNEXP_WARM_IDLE", "VIRTUAL_ENV", "CONDA_PREFIX")
MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to 107 bytes


class UnsafeFolder(Exception):
    """The socket folder is not this user's alone."""


def private_folder(environ=os.environ) -> Path:
    """The user's socket folder (``NNEXP_WARM_DIR``, else ``$XDG_RUNTIME_DIR``, else the runtime
    folder platformdirs names where it exists, else the temp dir; then ``nnexp-warm-<uid>``), made
    with mode 700. Raises :class:`UnsafeFolder` when it is a link, another user's, or open to
    others: then nobody else's server can be reached."""
    import warnings

    import platformdirs

    base = environ.get("NNEXP_WARM_DIR") or environ.get("XDG_RUNTIME_DIR")
    if not base:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # newer platformdirs warn that XDG_RUNTIME_DIR is unset
                runtime = Path(platformdirs.user_runtime_dir())
        except OSError:  # newer platformdirs refuse a runtime folder another user could replace
            runtime = None
        base = runtime if runtime and runtime.is_dir() and os.access(runtime, os.W_OK) else tempfile.gettempdir()
    folder = Path(base) / f"nnexp-warm-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise UnsafeFolder(f"{folder} is not a folder of this user's alone (owner {info.st_uid}, mode {stat.filemode(info.st_mode)})")
    return folder


def source_roots() -> list[Path]:
    """nnexp's own files: its package and its config package."""
    from importlib import resources

    import nnexp

    roots = [Path(nnexp.__file__).parent]
    configs = Path(str(resources.files("nnexp.configs")))
    if configs.is_dir() and roots[0] not in configs.parents:
        roots.append(configs)
    return roots


def fingerprint(environ=os.environ, roots: list[Path] | None = None) -> str:
    """A hash of what a server's imports depend on: the interpreter (its path, version and file),
    the import path (each folder's modification time changes when a package is installed or
    removed there), nnexp's own files (their times and sizes), the import-time environment
    variables and the user."""
    digest = hashlib.sha256()

    def add(*parts) -> None:
        digest.update("\0".join(map(str, parts)).encode(errors="surrogateescape") + b"\n")

    executable = os.path.realpath(sys.executable)
    info = os.stat(executable)
    add(executable, info.st_mtime_ns, info.st_size, sys.version, sys.prefix, os.getuid())
    for entry in sys.path[1:]:  # [0] is the script's folder: the client's and the server's differ
        try:
            add(entry, os.stat(entry).st_mtime_ns)
        except OSError:
            add(entry, "missing")
    for root in roots if roots is not None else source_roots():
        for folder, subfolders, files in os.walk(root):
            subfolders[:] = sorted(name for name in subfolders if name != "__pycache__")
            for name in sorted(files):
                if not name.endswith((".pyc", ".pyo")):
                    path = os.path.join(folder, name)
                    info = os.stat(path)
                    add(path, info.st_mtime_ns, info.st_size)
    for name in sorted(environ):
        if name.startswith(IMPORT_TIME_VARIABLES):
            add(name, environ[name])
    return digest.hexdigest()[:24]
