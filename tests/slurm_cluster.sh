#!/usr/bin/env bash
# A throw-away one-node SLURM cluster on localhost, for tests/test_slurm_cluster.py and CI.
#
#   tests/slurm_cluster.sh install          apt-get the Debian packages (root; skipped if present)
#   tests/slurm_cluster.sh start DIR        munge + slurmctld + slurmd, all state under DIR;
#                                           prints the two exports clients need (SLURM_CONF,
#                                           PATH with DIR/bin first)
#   tests/slurm_cluster.sh stop DIR         stop exactly the daemons `start` launched (by PID)
#
# No cgroups (proctrack/linuxproc, task/none) and no accounting storage, like many small
# clusters; so job state must be read with squeue. Nothing is written outside DIR: the config
# is found through SLURM_CONF, and DIR/bin/srun re-exports it because the SLURM jobstep
# executor drops SLURM_* variables before its inner srun (real clusters keep slurm.conf at
# the default path, where srun finds it without help). Ports: SLURMCTLD_PORT / SLURMD_PORT
# (defaults 16817 / 16818). Every wait is bounded.
set -euo pipefail

die() { echo "slurm_cluster: $*" >&2; exit 1; }

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v sbatch >/dev/null && command -v munged >/dev/null; then
        return 0
    fi
    [ "$(id -u)" = 0 ] || die "installing slurm needs root (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get update -q >/dev/null
    timeout 900 apt-get install -y -q --no-install-recommends \
        slurmctld slurmd slurm-client munge >/dev/null
}

write_config() {
    local dir=$1 cpus mem
    cpus=$(nproc)
    mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
    cat > "$dir/slurm.conf" <<EOF
ClusterName=unitetest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=${SLURMCTLD_PORT:-16817}
SlurmdPort=${SLURMD_PORT:-16818}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
    local dir=$1
    [ -n "$dir" ] || die "usage: $0 start DIR"
    mkdir -p "$dir"/{munge,state,spool,log}
    chmod 700 "$dir/munge"
    dir=$(cd "$dir" && pwd)
    : > "$dir/pids"
    head -c 1024 /dev/urandom > "$dir/munge/munge.key"
    chmod 400 "$dir/munge/munge.key"
    write_config "$dir"
    export SLURM_CONF=$dir/slurm.conf
    mkdir -p "$dir/bin"
    printf '#!/bin/sh\nSLURM_CONF=%s exec %s "$@"\n' "$SLURM_CONF" "$(command -v srun)" \
        > "$dir/bin/srun"
    chmod +x "$dir/bin/srun"

    munged --foreground --force --socket="$dir/munge/munge.socket" \
        --key-file="$dir/munge/munge.key" --pid-file="$dir/munge/munged.pid" \
        --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed" \
        > "$dir/log/munged.out" 2>&1 &
    echo "munged $!" >> "$dir/pids"
    timeout 30 bash -c "until [ -S '$dir/munge/munge.socket' ]; do sleep 0.2; done" \
        || die "munged did not start (see $dir/log/munged.log)"

    slurmctld -D -c -f "$SLURM_CONF" > "$dir/log/slurmctld.out" 2>&1 &
    echo "slurmctld $!" >> "$dir/pids"
    slurmd -D -f "$SLURM_CONF" -N localhost > "$dir/log/slurmd.out" 2>&1 &
    echo "slurmd $!" >> "$dir/pids"

    if ! timeout 90 bash -c 'until sinfo -h -o %T 2>/dev/null | grep -qE "^idle"; do sleep 1; done'; then
        tail -n 20 "$dir"/log/*.log >&2 || true
        stop "$dir"
        die "the node did not become idle within 90 s"
    fi
    echo "export SLURM_CONF=$SLURM_CONF"
    echo "export PATH=$dir/bin:\$PATH"
}

stop() {
    local dir=$1 name pid
    [ -f "$dir/pids" ] || return 0
    # reverse order: slurmd, slurmctld, then munged
    tac "$dir/pids" | while read -r name pid; do
        kill -TERM "$pid" 2>/dev/null || continue
        if ! timeout 20 bash -c "while kill -0 $pid 2>/dev/null; do sleep 0.2; done"; then
            echo "slurm_cluster: $name ($pid) ignored SIGTERM; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    rm -f "$dir/pids"
}

case "${1:-}" in
    install) install_packages ;;
    start) start "${2:-}" ;;
    stop) stop "${2:?usage: $0 stop DIR}" ;;
    *) die "usage: $0 {install|start DIR|stop DIR}" ;;
esac
