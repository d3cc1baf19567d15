#!/usr/bin/env bash
# Runs an experiment on Slurm: a job array of N shard tasks (scripts/cluster/slurm-array.sh) and a merge job
# that starts when every task has succeeded (a requeued task is waited for). Prints the two job ids.
#
#   scripts/cluster/slurm-submit.sh [options] CONFIG.yaml [--set k=v ...]
#     --tasks N        shards, one array task each (default 8)
#     --gpus G         GPUs per task, as --gres=gpu:G (default 1; 0 asks for none)
#     --mem M          memory per task (default 64G)
#     --cpus C         CPU cores per task (default 8)
#     --time T         time limit per task (default 12:00:00)
#     --sbatch "ARGS"  more sbatch options for both jobs, e.g. "--partition=gpu --account=lab"
#     --bin PATH       the goca-bench binary (default build/bin/goca-bench)
#
# Outputs: <run>/shard-k-of-N/ per task, then <run>/results.json, tables/, report.html from the merge, where
# <run> is <output_root>/<name> of the config (`goca-bench run CONFIG --print-run-dir`). Logs: <run>/logs/
# task-<k>.out (a requeued task appends to its log) and merge.out. Paths are made absolute, so the jobs do not
# depend on the folder they start in.
set -euo pipefail
TASKS=8 GPUS=1 MEM=64G CPUS=8 TIME=12:00:00 EXTRA="" BIN=build/bin/goca-bench
usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --tasks) TASKS=$2; shift 2 ;;
    --gpus) GPUS=$2; shift 2 ;;
    --mem) MEM=$2; shift 2 ;;
    --cpus) CPUS=$2; shift 2 ;;
    --time) TIME=$2; shift 2 ;;
    --sbatch) EXTRA=$2; shift 2 ;;
    --bin) BIN=$2; shift 2 ;;
    -h|--help) usage ;;
    -*) echo "slurm-submit: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || usage
case "$TASKS" in ''|*[!0-9]*|0) echo "slurm-submit: --tasks must be a positive integer, got '$TASKS'" >&2; exit 2 ;; esac
case "$GPUS" in ''|*[!0-9]*) echo "slurm-submit: --gpus must be an integer >= 0, got '$GPUS'" >&2; exit 2 ;; esac
CONFIG=$(realpath "$1"); shift
BIN=$(realpath "$BIN")
[ -x "$BIN" ] || { echo "slurm-submit: $BIN is not an executable goca-bench" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
RUN=$("$BIN" run "$CONFIG" "$@" --print-run-dir)
RUN=$(realpath -m "$RUN")
mkdir -p "$RUN/logs"
gres=()
[ "$GPUS" -gt 0 ] && gres=(--gres="gpu:$GPUS")
# shellcheck disable=SC2086  # EXTRA is a list of options
array=$(GOCA_BENCH="$BIN" sbatch --parsable --array="0-$((TASKS - 1))" --output="$RUN/logs/task-%a.out" \
  "${gres[@]}" --mem="$MEM" --cpus-per-task="$CPUS" --time="$TIME" $EXTRA \
  "$here/slurm-array.sh" "$CONFIG" "$@")
array=${array%%;*}
shards=$(printf '%q' "$RUN")/shard-*-of-$TASKS
# shellcheck disable=SC2086
merge=$(sbatch --parsable --job-name=goca-bench-merge --dependency="afterok:$array" --kill-on-invalid-dep=yes \
  --output="$RUN/logs/merge.out" --open-mode=append --cpus-per-task=1 --mem=4G --time=1:00:00 $EXTRA \
  --wrap "$(printf '%q' "$BIN") merge $shards --out $(printf '%q' "$RUN")")
merge=${merge%%;*}
echo "array job $array ($TASKS tasks), merge job $merge; logs in $RUN/logs"
