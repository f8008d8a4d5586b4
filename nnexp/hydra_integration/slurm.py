"""What SLURM says about a sweep's array, through its own commands (sinfo, squeue, sacct, scancel).

submitit submits and collects; these fill the gaps it leaves on a cluster without accounting:
it asks ``sacct`` for a job's state, and waits forever for a task that died without a result.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from nnexp.errors import ConfigError

# squeue reasons under which a pending task will not start unless its request changes, and the
# launcher setting that changes it. Any other reason (Resources, Priority, QOSMaxJobsPerUserLimit
# ...) is a busy cluster: the task starts once others end.
HOPELESS = {"PartitionConfig": "partition", "PartitionNodeLimit": "cpus_per_task", "PartitionTimeLimit": "timeout_min",
            "ReqNodeNotAvail": "partition", "BadConstraints": "additional_parameters", "InvalidQOS": "additional_parameters",
            "QOSMaxCpuPerJobLimit": "cpus_per_task", "QOSMaxMemoryPerJob": "mem_gb"}
# A dead task's SLURM state -> the status its unfinished jobs are recorded with. Every other way
# a task dies (NODE_FAIL, BOOT_FAIL, OUT_OF_MEMORY, PREEMPTED, FAILED, a task that vanished) loses
# its unfinished jobs with it: ``lost``, with the state in their error.
STATUS = {"TIMEOUT": "timeout", "DEADLINE": "timeout", "CANCELLED": "cancelled"}


def warning_delay_s(timeout_min: int) -> int:
    """Seconds before a task's time limit that SLURM warns it: submitit's 90, or half of a limit
    of 3 minutes or less (SLURM may still send it up to 60 s earlier: see ``task_python``)."""
    return min(90, timeout_min * 60 // 2)


def task_python() -> str:
    """The command a SLURM task's Python starts as (submitit's ``slurm_python``): this interpreter,
    with submitit's time-limit warning signal ignored until submitit installs its handler. SLURM
    may send the warning up to 60 s before the time asked ("the resolution of event handling",
    sbatch(1)): with a short limit, while the task's Python is still starting, when the signal's
    default action kills it (FAILED, its jobs lost). Ignored (inherited through exec), a warning
    that early is lost, and the task ends at its limit, TIMEOUT as asked."""
    from submitit.slurm.slurm import SlurmJobEnvironment

    warning = SlurmJobEnvironment.USR_SIG  # USR2, or submitit's SUBMITIT_PREEMPT_SIGNAL
    return f"/bin/sh -c 'trap \"\" {warning}; exec \"$0\" \"$@\"' {shlex.quote(sys.executable)}"


def job_status(state: str) -> str:
    """The status a dead task's unfinished jobs are recorded with: timeout, cancelled or lost."""
    return STATUS.get(state, "lost")


def hopeless_key(reason: str) -> str | None:
    """The launcher setting a pending task must change to start at all (squeue's reason, e.g.
    ``ReqNodeNotAvail, UnavailableNodes:n1``); None for a task that waits for a busy cluster."""
    return HOPELESS.get(reason.split(",")[0].strip())


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
    gpus: int = 0
    time_limit_min: float = float("inf")  # its partition's


def gres_gpus(gres: str) -> int:
    """GPUs in sinfo's generic-resource field (``gpu:2``, ``gpu:a100:4(S:0-1)``, ``(null)``)."""
    return sum(int(match) for match in re.findall(r"gpu(?::[^:,(]+)*?:(\d+)", gres))


def minutes(limit: str) -> float:
    """sinfo's time limit (``infinite``, ``30:00``, ``2:00:00``, ``1-12:00:00``) in minutes."""
    if not limit or limit in ("infinite", "UNLIMITED", "n/a"):
        return float("inf")
    days, _, clock = limit.rpartition("-")
    parts = [int(part) for part in clock.split(":")]
    hours, mins, secs = ([0] * (3 - len(parts)) + parts) if len(parts) > 1 else (0, parts[0], 0)
    return int(days or 0) * 1440 + hours * 60 + mins + secs / 60


def all_nodes() -> list[tuple[str, bool, Node]]:
    """(partition, is default, node) for every node of every partition sinfo lists."""
    output = _run("sinfo", "-h", "-N", "-o", "%N %c %m %P %G %l") or ""
    nodes = []
    for line in output.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        name, cpus, memory, part = fields[:4]
        gres, limit = (fields[4:6] + ["(null)", "infinite"][len(fields[4:6]):])
        nodes.append((part.rstrip("*"), part.endswith("*"),
                      Node(name, int(cpus), int(re.sub(r"\D", "", memory) or 0), gres_gpus(gres), minutes(limit))))
    return nodes


def partition_nodes(partition: str | None) -> list[Node]:
    """The nodes of ``partition`` (the default partition when None), from sinfo."""
    return [node for part, default, node in all_nodes() if (partition is None and default) or part == partition]


def check_request(partition: str | None, cpus_per_task: int, mem_gb: float | None, gpus_per_node: int | None = None,
                  timeout_min: float | None = None) -> None:
    """A request no node of the partition can satisfy is a config error naming the key and what
    the cluster offers; a request some node can satisfy is never refused here."""
    every = all_nodes()
    nodes = [node for part, default, node in every if (partition is None and default) or part == partition]
    if not nodes:
        if _run("sinfo", "-h") is None:
            return  # not a SLURM host: submitit says so when it submits
        names = sorted({part for part, _, _ in every})
        raise ConfigError("hydra.launcher.partition", partition,
                          f"one of the partitions sinfo lists: {', '.join(names) or 'none'}")
    where = f"partition {partition}" if partition else "the default partition"
    wanted = {"cpus_per_task": (cpus_per_task, lambda node: node.cpus >= cpus_per_task),
              "mem_gb": (mem_gb, lambda node: not isinstance(mem_gb, (int, float)) or mem_gb * 1024 <= node.memory_mb),
              "gpus_per_node": (gpus_per_node, lambda node: not gpus_per_node or node.gpus >= gpus_per_node),
              "timeout_min": (timeout_min, lambda node: not timeout_min or timeout_min <= node.time_limit_min)}
    if any(all(fits(node) for _, fits in wanted.values()) for node in nodes):
        return
    def largest(measure):
        node = max(nodes, key=measure)
        return measure(node), f"the largest node ({node.name})"

    offers = {"cpus_per_task": "at most {} CPUs, {}".format(*largest(lambda node: node.cpus)),
              "mem_gb": "at most {} GB, {}".format(*largest(lambda node: node.memory_mb // 1024)),
              "gpus_per_node": "at most {} GPUs, {}".format(*largest(lambda node: node.gpus)),
              "timeout_min": f"at most {max(node.time_limit_min for node in nodes):g} minutes, the time limit"}
    # Name the settings no node of the partition can meet on its own; else the combination.
    alone = [key for key, (value, fits) in wanted.items() if value and not any(fits(node) for node in nodes)]
    key = alone[0] if alone else next(key for key in ("gpus_per_node", "mem_gb", "timeout_min", "cpus_per_task")
                                      if wanted[key][0])  # the scarcer resource, not the CPU every job asks for
    elsewhere = sorted({part for part, _, node in every if part != partition and all(fits(node) for _, fits in wanted.values())})
    hint = f"; partitions that can: {', '.join(elsewhere)} (hydra.launcher.partition=...)" if elsewhere else ""
    detail = offers[key] if alone else "no single node has all of " + ", ".join(
        f"{name}={value}" for name, (value, _) in wanted.items() if value)
    raise ConfigError(f"hydra.launcher.{key}", wanted[key][0], f"{detail} of {where}{hint}")


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
    accounting, else scontrol's (SLURM keeps an ended job MinJobAge seconds, 300 by default),
    else what slurmstepd wrote into the task's error stream, else FAILED."""
    accounted = (_run("sacct", "-n", "-X", "-P", "-j", task_id, "-o", "State") or "").split()
    if accounted:
        return accounted[0].split()[0]
    shown = re.search(r"\bJobState=(\S+)", _run("scontrol", "-o", "show", "job", task_id) or "")
    if shown and shown.group(1) not in ("PENDING", "RUNNING", "COMPLETING", "COMPLETED"):
        return shown.group(1)
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
