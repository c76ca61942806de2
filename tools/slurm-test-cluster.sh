#!/usr/bin/env bash
# A one-node Slurm for the cluster tests (tests/cluster): `start` writes a slurm.conf for this
# host and its CPUs into a temporary folder, creates a munge key there and starts munged,
# slurmctld and slurmd, then waits until `sinfo` shows the node idle; `stop` stops them and
# removes the folder. Needs root and Debian's slurm-wlm and munge
# (apt-get install -y slurm-wlm munge). Clients find the cluster through SLURM_CONF:
#   eval "$(tools/slurm-test-cluster.sh start)"   # prints: export SLURM_CONF=…
#   tools/slurm-test-cluster.sh stop
set -euo pipefail
DIR="${RELEVANCE_SLURM_DIR:-/tmp/relevance-slurm}"
CONF="$DIR/slurm.conf"
CTLD_PORT="${RELEVANCE_SLURM_PORT:-16817}"

fail() { echo "slurm-test-cluster: $*" >&2; exit 1; }

stop_pid() { # stop the daemon whose pid is in file $1 (only that process)
  [ -f "$1" ] || return 0
  local pid; pid=$(cat "$1" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
}

stop() {
  [ -d "$DIR" ] || return 0
  stop_pid "$DIR/slurmd.pid"
  stop_pid "$DIR/slurmctld.pid"
  stop_pid "$DIR/munged.pid"
  rm -rf "$DIR"
}

start() {
  [ "$(id -u)" = 0 ] || fail "needs root (slurmd runs jobs as their users)"
  for cmd in munged mungekey slurmctld slurmd sinfo sbatch; do
    command -v "$cmd" >/dev/null || fail "$cmd not found: apt-get install -y slurm-wlm munge"
  done
  stop
  mkdir -p "$DIR"/{state,spool,munge}
  chmod 700 "$DIR" "$DIR/munge"
  local host cpus mem
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
  mungekey --create --keyfile="$DIR/munge/munge.key" --force >/dev/null
  chmod 600 "$DIR/munge/munge.key"
  munged --force --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket" \
    --pid-file="$DIR/munged.pid" --log-file="$DIR/munged.log" \
    --seed-file="$DIR/munge/munge.seed" || fail "munged did not start: $(tail -3 "$DIR/munged.log" 2>/dev/null)"
  cat >"$CONF" <<CONF
# One-node test cluster written by tools/slurm-test-cluster.sh
ClusterName=relevance-test
SlurmctldHost=$host
SlurmctldPort=$CTLD_PORT
SlurmdPort=$((CTLD_PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF="$CONF"
  slurmctld -f "$CONF" || fail "slurmctld did not start: $(tail -5 "$DIR/slurmctld.log" 2>/dev/null)"
  slurmd -f "$CONF" || fail "slurmd did not start: $(tail -5 "$DIR/slurmd.log" 2>/dev/null)"
  for _ in $(seq 60); do
    if sinfo -h -N -o '%t' 2>/dev/null | grep -qx 'idle'; then
      echo "export SLURM_CONF=$CONF"
      return 0
    fi
    sleep 1
  done
  fail "the node did not become idle in 60 s: $(sinfo -N 2>&1 | tail -2); $(tail -3 "$DIR/slurmctld.log" 2>/dev/null)"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
