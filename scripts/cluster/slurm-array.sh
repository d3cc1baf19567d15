#!/usr/bin/env bash
# Runs one experiment as a Slurm job array: task i of n evaluates shard i/n (every image index with
# index % n == i), then the last task to finish merges the shards. Usage:
#   sbatch --array=0-7 scripts/cluster/slurm-array.sh configs/experiments/table1.yaml [--set k=v ...]
# Each task writes runs/<name>/shard-<i>-of-<n>/ (results.json + journal); a requeued or restarted task
# resumes from its journal (--resume), so no image is redone or counted twice. Merge by hand with
#   goca-bench merge runs/<name>/shard-*-of-<n> --out runs/<name>
#SBATCH --job-name=goca-bench
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=8
#SBATCH --mem=64G
#SBATCH --time=12:00:00
#SBATCH --output=logs/goca-bench-%A_%a.out
#SBATCH --requeue
set -euo pipefail
CONFIG=${1:?usage: sbatch --array=0-N slurm-array.sh CONFIG.yaml [--set k=v ...]}
shift
BIN=${GOCA_BENCH:-build/bin/goca-bench}
I=${SLURM_ARRAY_TASK_ID:?not running inside a Slurm job array}
N=${SLURM_ARRAY_TASK_COUNT:?not running inside a Slurm job array}
mkdir -p logs
"$BIN" run "$CONFIG" "$@" --shard "$I/$N" --resume --no-progress
# The last shard to finish merges (a lock keeps two finishers from merging at once).
NAME=$("$BIN" config show "$CONFIG" "$@" 2>/dev/null | sed -n 's/^name: *//p' | head -1)
ROOT=$("$BIN" config show "$CONFIG" "$@" 2>/dev/null | sed -n 's/^output_root: *//p' | head -1)
RUN="${ROOT:-runs}/${NAME}"
DONE=$(ls -d "$RUN"/shard-*-of-"$N"/results.json 2>/dev/null | wc -l)
if [ "$DONE" -eq "$N" ]; then
  (
    flock -n 9 || exit 0
    "$BIN" merge "$RUN"/shard-*-of-"$N" --out "$RUN"
  ) 9>"$RUN/.merge.lock"
fi
