#!/usr/bin/env bash
# A one-node SLURM cluster on localhost for the tests, in a directory of its own:
#   source slurm_cluster.sh; slurm_start DIR; ...srun/sbatch...; slurm_stop
# munged, slurmctld and slurmd run as root with their config, state, logs and sockets
# under DIR (SLURM_CONF points the clients there); slurm_stop kills them by PID and is
# safe to call twice (use it in an EXIT trap). Needs Debian's slurm-wlm and munge
# (tools/scripts/install_deps.sh) and root.
slurm_start() {
  SLURM_DIR=$1
  mkdir -p "$SLURM_DIR"/{state,spool,munge,log}
  local host cpus mem port
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512))
  port=$((20000 + RANDOM % 20000))
  # munge: a fresh key; the daemon's socket in our directory.
  dd if=/dev/urandom bs=1 count=1024 of="$SLURM_DIR/munge/munge.key" 2> /dev/null
  chmod 0400 "$SLURM_DIR/munge/munge.key"
  chmod 0700 "$SLURM_DIR/munge"
  munged --force --key-file="$SLURM_DIR/munge/munge.key" --socket="$SLURM_DIR/munge/munge.socket" \
    --pid-file="$SLURM_DIR/munge/munged.pid" --log-file="$SLURM_DIR/log/munged.log" \
    --seed-file="$SLURM_DIR/munge/munge.seed" || return 1
  cat > "$SLURM_DIR/slurm.conf" <<CONF
ClusterName=cpctest
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
AuthInfo=socket=$SLURM_DIR/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURM_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
MpiDefault=none
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=10
MinJobAge=300
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
  export SLURM_CONF=$SLURM_DIR/slurm.conf
  slurmctld -f "$SLURM_CONF" || return 1
  slurmd -f "$SLURM_CONF" || return 1
  local i
  for i in $(seq 60); do
    if sinfo -h -o '%T' 2> /dev/null | grep -qE '^(idle|mixed|allocated)'; then return 0; fi
    sleep 0.5
  done
  echo "slurm_cluster: the node did not come up; logs:" >&2
  tail -n 20 "$SLURM_DIR"/log/*.log >&2
  return 1
}

slurm_stop() {
  [ -n "${SLURM_DIR:-}" ] || return 0
  local f pid
  for f in "$SLURM_DIR/slurmd.pid" "$SLURM_DIR/slurmctld.pid" "$SLURM_DIR/munge/munged.pid"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2> /dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2> /dev/null
    rm -f "$f"
  done
  SLURM_DIR=
}
