#!/usr/bin/env bash
# One task of a Slurm job array: task k of an array 0..n-1 evaluates shard k/n of an experiment (every image
# index with index % n == k) into <output_root>/<name>/shard-k-of-n/ with --resume, so a requeued or restarted
# task continues from its journal and no image is redone or counted twice.
#
# Submit through scripts/cluster/slurm-submit.sh: it creates the log folder (Slurm cannot start a task whose
# --output folder is missing), asks for the resources and queues the merge after the last task. By hand:
#   mkdir -p LOGS && sbatch --array=0-7 --output=LOGS/task-%a.out --gres=gpu:1 --mem=64G --cpus-per-task=8 \
#       scripts/cluster/slurm-array.sh CONFIG.yaml [--set k=v ...]
#   sbatch --dependency=afterok:<array job id> --wrap 'build/bin/goca-bench merge RUN/shard-*-of-8 --out RUN'
# Resource requests are left to the submit line: what a cluster offers (GPU gres names, memory per node,
# partitions) differs, and a request a cluster cannot meet is refused at submission.
#SBATCH --job-name=goca-bench
#SBATCH --requeue
#SBATCH --open-mode=append
set -euo pipefail
CONFIG=${1:?usage: sbatch --array=0-N slurm-array.sh CONFIG.yaml [--set k=v ...]}
shift
BIN=${GOCA_BENCH:-build/bin/goca-bench}
TASK=${SLURM_ARRAY_TASK_ID:?not running inside a Slurm job array (submit with sbatch --array=0-N)}
MIN=${SLURM_ARRAY_TASK_MIN:?}
MAX=${SLURM_ARRAY_TASK_MAX:?}
N=${SLURM_ARRAY_TASK_COUNT:?}
if [ $((MAX - MIN + 1)) -ne "$N" ]; then
  echo "goca-bench: the array must be contiguous (--array=0-$((N - 1))), got tasks $MIN..$MAX with $N ids" >&2
  exit 2
fi
I=$((TASK - MIN))
echo "goca-bench: job ${SLURM_ARRAY_JOB_ID}_${TASK} on $(hostname): shard $I/$N, start $(date -u +%FT%TZ), restart ${SLURM_RESTART_COUNT:-0}"
exec "$BIN" run "$CONFIG" "$@" --shard "$I/$N" --resume --no-progress
