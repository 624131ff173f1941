#!/usr/bin/env bash
# Train on every GPU of this machine (or NUM_GPUS of them), or on the CPU when it has none.
#   launch/single_node.sh [--config PRESET_OR_YAML] [key.sub=value ...]
# PRECISION=fp16 picks the fp16 + loss-scaling config for GPUs without bf16.
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
else
    set -- --cpu --num_processes 1 "$root/distgan/train.py" "$@"
fi
echo "launch: accelerate launch $*" >&2
exec accelerate launch "$@"
