#!/usr/bin/env bash
# Starts a one-node Slurm on this machine (munged, slurmctld, slurmd) for farm's Slurm tests,
# and `scripts/slurm-up.sh down` stops it. Needs root and Debian's slurmctld, slurmd,
# slurm-client and munge packages. The node is this host, with every core and 1 GiB per job
# slot; jobs share the node (select/cons_tres), and no cgroups or accounting daemon are used,
# so it also runs in a container or a VM without systemd.
set -euo pipefail

conf=/etc/slurm/slurm.conf
state=/var/lib/farm-slurm

down() {
  pkill -x slurmd 2>/dev/null || true
  pkill -x slurmctld 2>/dev/null || true
  pkill -x munged 2>/dev/null || true
  for _ in $(seq 50); do
    pgrep -x slurmd >/dev/null || pgrep -x slurmctld >/dev/null || pgrep -x munged >/dev/null \
      || return 0
    sleep 0.1
  done
  for p in slurmd slurmctld munged; do pkill -9 -x "$p" 2>/dev/null || true; done
}

if [[ "${1:-up}" == down ]]; then
  down
  exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    slurmctld slurmd slurm-client munge >/dev/null
fi

down
host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
mkdir -p "$state/ctld" "$state/d" /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
if [[ ! -s /etc/munge/munge.key ]]; then
  mkdir -p /etc/munge
  dd if=/dev/urandom of=/etc/munge/munge.key bs=128 count=1 status=none
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
fi

cat >"$conf" <<CONF
# written by farm's scripts/slurm-up.sh: a one-node test cluster
ClusterName=farm
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
MinJobAge=600
KillWait=5
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=farm Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

runuser -u munge -- /usr/sbin/munged
slurmctld
slurmd

# Ready when the node takes jobs.
for _ in $(seq 300); do
  if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
    echo "slurm up: node $host, $cpus cpus"
    exit 0
  fi
  sleep 0.1
done
echo "slurm did not come up; logs in $state" >&2
tail -20 "$state/slurmctld.log" "$state/slurmd.log" >&2 || true
exit 1
