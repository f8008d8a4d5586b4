"""What SLURM says about a sweep's array, through its own commands (sinfo, squeue, sacct, scancel).

submitit submits and collects; these fill the gaps it leaves on a cluster without accounting:
it asks ``sacct`` for a job's state, and waits forever for a task that died without a result.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from nnexp.errors import ConfigError

# squeue reasons under which a pending task will not start unless its request changes.
HOPELESS = ("PartitionConfig", "PartitionNodeLimit", "PartitionTimeLimit", "ReqNodeNotAvail", "BadConstraints",
            "InvalidQOS", "QOSMaxCpuPerJobLimit", "QOSMaxMemoryPerJob")
# A dead task's SLURM state -> the status its unfinished jobs are recorded with.
STATUS = {"OUT_OF_MEMORY": "oom", "TIMEOUT": "timeout", "CANCELLED": "cancelled", "PREEMPTED": "cancelled",
          "NODE_FAIL": "failed", "FAILED": "failed", "BOOT_FAIL": "failed", "DEADLINE": "timeout"}


def _run(*command: str) -> str | None:
    """A SLURM command's output, or None when it fails (no such command, no accounting)."""
    if shutil.which(command[0]) is None:
        return None
    done = subprocess.run(command, capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else None


@dataclass
class Node:
    name: str
    cpus: int
    memory_mb: int


def partition_nodes(partition: str | None) -> list[Node]:
    """The nodes of ``partition`` (the default partition when None), from sinfo."""
    command = ["sinfo", "-h", "-N", "-o", "%N %c %m %P"]
    output = _run(*command) or ""
    nodes = []
    for line in output.splitlines():
        name, cpus, memory, part = line.split()
        default = part.endswith("*")
        if (partition is None and default) or part.rstrip("*") == partition:
            nodes.append(Node(name, int(cpus), int(re.sub(r"\D", "", memory) or 0)))
    return nodes


def check_request(partition: str | None, cpus_per_task: int, mem_gb: float | None) -> None:
    """A request no node of the partition can satisfy is a config error naming the key and the largest node."""
    nodes = partition_nodes(partition)
    if not nodes:
        if _run("sinfo", "-h") is None:
            return  # not a SLURM host: submitit says so when it submits
        raise ConfigError("hydra.launcher.partition", partition, "a partition sinfo lists")
    largest = max(nodes, key=lambda node: (node.cpus, node.memory_mb))
    if cpus_per_task > max(node.cpus for node in nodes):
        raise ConfigError("hydra.launcher.cpus_per_task", cpus_per_task,
                          f"at most {largest.cpus}, the CPUs of the largest node ({largest.name}) of the partition")
    if mem_gb and mem_gb * 1024 > max(node.memory_mb for node in nodes):
        raise ConfigError("hydra.launcher.mem_gb", mem_gb,
                          f"at most {max(node.memory_mb for node in nodes) // 1024} GB, the memory of the largest node ({largest.name})")


def queue_states(array_id: str) -> dict[str, tuple[str, str]]:
    """{task id: (state, reason)} of the array's tasks still in the queue."""
    output = _run("squeue", "-h", "-r", "-j", array_id, "-o", "%i %T %r") or ""
    states = {}
    for line in output.splitlines():
        parts = line.split(maxsplit=2)
        if len(parts) == 3:
            states[parts[0]] = (parts[1], parts[2])
    return states


def ended_state(task_id: str, stderr: Path) -> str:
    """How a task that left the queue without a result ended: sacct's state where SLURM keeps
    accounting, else what slurmstepd wrote into the task's error stream, else FAILED."""
    accounted = (_run("sacct", "-n", "-X", "-P", "-j", task_id, "-o", "State") or "").split()
    if accounted:
        return accounted[0].split()[0]
    text = stderr.read_text(errors="replace") if stderr.is_file() else ""
    for pattern, state in (("DUE TO TIME LIMIT", "TIMEOUT"), ("oom-kill", "OUT_OF_MEMORY"), ("Out Of Memory", "OUT_OF_MEMORY"),
                           ("CANCELLED", "CANCELLED"), ("PREEMPTION", "PREEMPTED")):
        if pattern in text:
            return state
    return "FAILED"


def cancel(job_ids: list[str]) -> None:
    """scancel these jobs (arrays included); ids SLURM no longer knows are ignored."""
    if job_ids:
        _run("scancel", *job_ids)
