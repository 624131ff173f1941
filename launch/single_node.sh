#!/usr/bin/env bash
# Train on every GPU of this machine (or NUM_GPUS of them), or on the CPU when it has none.
#   launch/single_node.sh [--config PRESET_OR_YAML] [key.sub=value ...]
# PRECISION=fp16 picks the fp16 + loss-scaling config for GPUs without bf16.
# NUM_PROCESSES=N runs N CPU processes (gloo) on a machine without GPUs (default 1).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
gpus=${NUM_GPUS:-$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)}
configs=$root/accelerate_configs
if [[ $gpus -ge 2 ]]; then
    config=$configs/multi_gpu.yaml
    [[ ${PRECISION:-bf16} == fp16 ]] && config=$configs/multi_gpu_fp16.yaml
    set -- --config_file "$config" --num_processes "$gpus" "$root/distgan/train.py" "$@"
elif [[ $gpus -eq 1 ]]; then
    set -- --config_file "$configs/single_gpu.yaml" --mixed_precision "${PRECISION:-bf16}" "$root/distgan/train.py" "$@"
elif [[ ${NUM_PROCESSES:-1} -ge 2 ]]; then
    set -- --config_file "$configs/cpu.yaml" --num_processes "$NUM_PROCESSES" "$root/distgan/train.py" "$@"
else
    set -- --cpu --num_processes 1 "$root/distgan/train.py" "$@"
fi
# The launcher must survive the requeue signal (a job-wide USR1 would kill it); the training
# processes install their own handler and checkpoint (see distgan/training/preemption.py).
trap "" "${DISTGAN_REQUEUE_SIGNAL:-USR1}"
echo "launch: accelerate launch $*" >&2
exec accelerate launch "$@"
