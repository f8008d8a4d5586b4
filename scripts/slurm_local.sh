#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for trying nnexp's cluster mode and for its tests.
#
#   scripts/slurm_local.sh start DIR   # munged, slurmctld and slurmd under DIR; prints the env to use
#   scripts/slurm_local.sh stop DIR    # stops every daemon it started, by pid
#
# Needs Debian's slurm-wlm and munge (apt-get install slurm-wlm munge) and root (slurmd runs jobs
# as their user). The daemons listen on 127.0.0.1 only; no cgroups, no systemd, no accounting.
# Use the cluster with: export SLURM_CONF=DIR/slurm.conf
set -euo pipefail
action="${1:?start or stop}"
dir="$(realpath -m "${2:?a folder for the cluster files}")"

stop() {
  local pids=()
  for name in slurmd slurmctld munged; do
    if [ -f "$dir/$name.pid" ]; then
      pids+=("$(cat "$dir/$name.pid")")
      kill "${pids[-1]}" 2>/dev/null || true
      rm -f "$dir/$name.pid"
    fi
  done
  # Return once they have exited (each takes about 2 s): slurmctld saves its state into DIR as it
  # stops, and a caller that removes DIR at once would race it and leave DIR/state behind.
  for pid in "${pids[@]}"; do
    if ! timeout 30 tail --pid="$pid" -s 0.05 -f /dev/null; then
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
}

if [ "$action" = stop ]; then
  # Jobs first: a task still ending when its daemons go would leave its srun and slurmstepd waiting.
  if [ -f "$dir/slurm.conf" ] && [ -f "$dir/slurmctld.pid" ]; then
    export SLURM_CONF="$dir/slurm.conf"
    scancel --full --user="$(id -un)" 2>/dev/null || true
    for _ in $(seq 150); do
      [ -z "$(squeue -h 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
  stop
  exit 0
fi

mkdir -p "$dir"/{spool,state,munge,log}
chmod 755 "$dir"
# munge: a key of its own and a socket in DIR, so that a machine's own munged is left alone.
if [ ! -f "$dir/munge/munge.key" ]; then
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
fi
chown -R munge:munge "$dir/munge"
chmod 700 "$dir/munge"
chmod 400 "$dir/munge/munge.key"
runuser -u munge -- /usr/sbin/munged --key-file="$dir/munge/munge.key" --socket="$dir/munge/socket" \
  --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/seed" --force
cp "$dir/munge/munged.pid" "$dir/munged.pid"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ctld_port="$(free_port)"
slurmd_port="$(free_port)"
cpus="$(nproc)"
memory="$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)"  # MB, leaving the system some
host="$(hostname -s)"
cat > "$dir/slurm.conf" <<CONF
ClusterName=nnexp
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
AuthInfo=socket=$dir/munge/socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
MessageTimeout=10
KillWait=5
InactiveLimit=0
MinJobAge=300
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
export SLURM_CONF="$dir/slurm.conf"
/usr/sbin/slurmctld -f "$SLURM_CONF" -i
/usr/sbin/slurmd -f "$SLURM_CONF"
# Up when the node is idle (about a second here).
for _ in $(seq 100); do
  if sinfo -h -o '%t' 2>/dev/null | grep -q '^idle'; then
    echo "export SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 0.2
done
echo "slurm_local: the node did not come up; see $dir/log" >&2
stop
exit 1
