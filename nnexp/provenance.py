"""Where a result came from: library versions, host, device and the git commit of the working folder.

Every run dir and sweep root gets ``provenance.json``; ``nnexp --version`` prints the same facts.
Each fact is gathered once per process (a sweep's jobs share them). Git is asked once, with one
``git status`` (about 10 ms), and never fails a run: no git, no repository or a slow one leaves
the commit out.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import socket
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from nnexp.results import PROVENANCE_FILE, write_json

# What the record calls each library: its module (whose __version__ is free once imported, as in
# a run) and its distributions (asked otherwise, ~2 ms each; the first installed one counts).
LIBRARIES = {
    "nnexp": ("nnexp", ("nnexp",)),
    "torch": ("torch", ("torch",)),
    "lightning": ("pytorch_lightning", ("pytorch-lightning", "lightning")),
    "hydra": ("hydra", ("hydra-core",)),
    "omegaconf": ("omegaconf", ("omegaconf",)),
    "scikit-learn": ("sklearn", ("scikit-learn",)),
    "numpy": ("numpy", ("numpy",)),
}
GIT_TIMEOUT_S = 5


@functools.cache
def library_versions() -> dict[str, str]:
    """Python's version and each library's installed version ("not installed" when it is not)."""
    versions = {"python": platform.python_version()}
    for name, (module, distributions) in LIBRARIES.items():
        versions[name] = getattr(sys.modules.get(module), "__version__", None) or "not installed"
        for distribution in distributions if versions[name] == "not installed" else ():
            try:
                versions[name] = version(distribution)
                break
            except PackageNotFoundError:
                continue
    return versions


@functools.cache
def host() -> dict[str, str]:
    """The machine: its name, OS and CPU."""
    return {"name": socket.gethostname(), "os": f"{platform.system()} {platform.release()}", "cpu": cpu_model()}


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what the platform module says."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def device(accelerator: str | None = None) -> str:
    """What trains: the GPU's name when CUDA is available and the run may use it, else the CPU.
    torch is asked only when it is already imported (a run has it; ``--version`` imports it)."""
    torch = sys.modules.get("torch")
    if accelerator != "cpu" and torch is not None and torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)} (of {torch.cuda.device_count()})"
    return f"cpu: {host()['cpu']}"


@functools.cache
def git_state(folder: str) -> dict[str, Any] | None:
    """The commit of the git repository holding ``folder`` and whether its tracked files have
    uncommitted changes; None outside a repository, without git, or when git does not answer."""
    try:
        answer = subprocess.run(["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no"], cwd=folder,
                                capture_output=True, text=True, timeout=GIT_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return None
    if answer.returncode != 0:
        return None
    lines = answer.stdout.splitlines()
    commit = next((line.split()[2] for line in lines if line.startswith("# branch.oid ")), None)
    if commit is None or commit == "(initial)":
        return None
    return {"commit": commit, "dirty": any(not line.startswith("#") for line in lines)}


def provenance(accelerator: str | None = None) -> dict[str, Any]:
    """Versions, host, device and (inside a git repository) the working folder's commit."""
    record: dict[str, Any] = {"versions": library_versions(), "host": host(), "device": device(accelerator)}
    git = git_state(os.getcwd())
    if git is not None:
        record["git"] = git
    return record


def write_provenance(directory: Path, accelerator: str | None = None) -> None:
    """Write provenance.json into a run dir or sweep root."""
    write_json(Path(directory) / PROVENANCE_FILE, provenance(accelerator))


def read_provenance(directory: Path) -> dict[str, Any] | None:
    """A dir's provenance.json, None when it has none (written before nnexp recorded it) or it is unreadable."""
    try:
        return json.loads((Path(directory) / PROVENANCE_FILE).read_text())
    except (OSError, ValueError):
        return None


def compat_paths() -> dict[str, str]:
    """Which Hydra and OmegaConf paths nnexp.compat takes here: its own report when it has one,
    else whether the installed versions are those its private fast paths were written against."""
    from nnexp import compat

    report = getattr(compat, "compatibility_paths", None)  # the releases branch adds it
    if callable(report):
        return dict(report())
    return {
        "hydra": "private fast paths (hydra-core 1.3)" if getattr(compat, "KNOWN_HYDRA", False) else "public fallback",
        "omegaconf": "private fast paths (omegaconf 2.3)" if getattr(compat, "KNOWN_OMEGACONF", False) else "public fallback",
    }


def version_lines() -> list[str]:
    """``nnexp --version``: the versions, host, device, git commit and compatibility paths."""
    if "+cpu" not in library_versions()["torch"]:  # a CPU-only build has no CUDA to ask about
        import torch  # noqa: F401  (imported for device())

    record = provenance()
    versions = record["versions"]
    lines = [f"nnexp {versions['nnexp']}", "  " + ", ".join(f"{name} {value}" for name, value in versions.items() if name != "nnexp")]
    lines.append(f"  host: {record['host']['name']} ({record['host']['os']})")
    lines.append(f"  device: {record['device']}")
    git = record.get("git")
    lines.append(f"  git: {git['commit'][:12]}{' (uncommitted changes)' if git['dirty'] else ''}" if git else "  git: none recorded (no git repository here, or no git to ask)")
    lines.append("  compat: " + "; ".join(f"{name}: {path}" for name, path in compat_paths().items()))
    return lines
