#!/usr/bin/env bash
# The Slurm recipe (scripts/cluster/) on a real single-node Slurm: installs Debian's slurm-wlm and munge if
# missing (needs root and the Debian archive), starts munged, slurmctld and slurmd on loopback with all state
# in a temporary folder, submits an experiment as a 3-task array with scripts/cluster/slurm-submit.sh,
# requeues one task while it runs, waits for the merge job, and checks that the merged results equal a
# single-process run (`goca-bench compare`, exit 0) and that every shard's images were counted once.
#   tests/cluster/test_slurm.sh BUILD_DIR        (make test-cluster)
# Exit 0 pass, 1 fail, 77 skipped (no Slurm and cannot install it).
set -uo pipefail
BUILD=$(realpath "${1:?usage: tests/cluster/test_slurm.sh BUILD_DIR}")
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BIN="$BUILD/bin/goca-bench"
[ -x "$BIN" ] || { echo "test_slurm: $BIN not built"; exit 1; }
say() { echo "test_slurm: $*"; }

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    say "SKIPPED: slurm-wlm and munge are not installed and this user cannot install them"
    exit 77
  fi
  say "installing slurm-wlm and munge (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null; } ||
    { say "SKIPPED: apt-get install slurm-wlm munge failed"; exit 77; }
fi
if [ "$(id -u)" -ne 0 ]; then
  say "SKIPPED: the daemons (slurmd) need root"
  exit 77
fi

T=$(mktemp -d /tmp/gb-slurm.XXXXXX)
chmod 755 "$T"
export SLURM_CONF="$T/slurm.conf"
cleanup() {
  [ -f "$T/slurmd.pid" ] && kill "$(cat "$T/slurmd.pid")" 2>/dev/null
  [ -f "$T/slurmctld.pid" ] && kill "$(cat "$T/slurmctld.pid")" 2>/dev/null
  munged --stop --socket="$T/munge/sock" >/dev/null 2>&1
  sleep 1
  pkill -f "slurmstepd.*$T" 2>/dev/null
  if [ "${KEEP:-0}" = 1 ]; then say "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
fail() {
  say "FAILED: $*"
  for f in "$T"/log/*.log "$T"/runs/*/logs/*.out; do [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }; done
  exit 1
}

# munge: its own key, socket and logs.
mkdir -p "$T/munge" "$T/state" "$T/spool" "$T/log"
chmod 700 "$T/munge"
head -c 1024 /dev/urandom >"$T/munge/munge.key"
chmod 400 "$T/munge/munge.key"
munged --force --socket="$T/munge/sock" --key-file="$T/munge/munge.key" --log-file="$T/munge/log" \
  --pid-file="$T/munge/pid" --seed-file="$T/munge/seed" || fail "munged did not start"

# Slurm on loopback, ports picked at random so two runs (or a real Slurm) do not collide.
port=$((20000 + RANDOM % 20000))
node=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
cat >"$SLURM_CONF" <<CONF
ClusterName=gbtest
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
AuthInfo=socket=$T/munge/sock
CredType=cred/munge
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=600
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
slurmctld -i || fail "slurmctld did not start"
slurmd || fail "slurmd did not start"
for _ in $(seq 30); do sinfo -h -o %T 2>/dev/null | grep -q idle && break; sleep 1; done
sinfo -h -o %T | grep -q idle || fail "the node did not come up: $(sinfo 2>&1)"
say "Slurm up on port $port ($(sinfo -h -o '%D node, %c CPUs'))"

# The experiment: the quickstart, smaller, one image per forward so a task runs long enough to be requeued.
cd "$SRC"  # the quickstart's paths are relative to the repository
sets=(--set output_root="$T/runs" --set datasets.0.synthetic_images=18 --set batch_size=1 --set workers=1
      --set datasets.0.set.root="$T/data/VOC2012" --set datasets.0.set.captions="$T/data/VOC2012/captions.json")
cfg=configs/quickstart.yaml
# The single-process reference (it also checks that the config runs at all before Slurm is involved).
"$BIN" run "$cfg" "${sets[@]}" --out "$T/single" --no-progress >"$T/single.log" 2>&1 || { cat "$T/single.log"; fail "the single run failed"; }
rm -rf "$T/data"  # the array tasks write the synthetic dataset again, concurrently (one of them under a lock)

out=$("$SRC/scripts/cluster/slurm-submit.sh" --tasks 3 --gpus 0 --mem 1G --cpus 1 --time 10:00 --bin "$BIN" \
      "$cfg" "${sets[@]}") || fail "slurm-submit.sh failed: $out"
say "$out"
array=$(echo "$out" | sed -n 's/^array job \([0-9]*\).*/\1/p')
merge=$(echo "$out" | sed -n 's/.*merge job \([0-9]*\).*/\1/p')
run="$T/runs/quickstart"

# Requeue task 1 once it has journalled an image but is not done.
requeued=0
for _ in $(seq 600); do
  state=$(squeue -h -j "${array}_1" -o %T 2>/dev/null)
  if [ "$state" = RUNNING ] && compgen -G "$run/shard-1-of-3/journal/*" >/dev/null &&
     [ -n "$(find "$run/shard-1-of-3/journal" -type f -size +0 2>/dev/null)" ]; then
    scontrol requeue "${array}_1" && requeued=1
    say "requeued task 1 while running ($(cat "$run"/shard-1-of-3/journal/* 2>/dev/null | wc -l) journal lines)"
    break
  fi
  [ -z "$state" ] && break
  sleep 0.2
done
[ "$requeued" = 1 ] || fail "task 1 finished before it could be requeued (state '$state')"

# Wait for the merge job (the array tasks, the requeued one included, come first).
for _ in $(seq 600); do
  [ -z "$(squeue -h -j "$array,$merge" 2>/dev/null)" ] && break
  sleep 1
done
[ -z "$(squeue -h -j "$array,$merge" 2>/dev/null)" ] || fail "jobs still queued after 10 minutes: $(squeue)"
mstate=$(scontrol show job "$merge" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
[ "$mstate" = COMPLETED ] || fail "the merge job ended $mstate"
grep -q "restart 1" "$run/logs/task-1.out" || fail "task 1's log does not show its restart"
grep -q "restart 0" "$run/logs/task-1.out" || fail "task 1's log lost its first attempt (open-mode append)"
[ -f "$run/results.json" ] || fail "no merged results.json"
"$BIN" compare "$run" "$T/single" >"$T/compare.log" 2>&1 || { cat "$T/compare.log"; fail "merged results differ from the single run"; }
say "PASSED: 3-task array with a requeue merged equal to the single run"
