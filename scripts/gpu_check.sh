#!/usr/bin/env bash
# The CUDA checks and GPU figures, in one prepared call (about 6.5 min on an H200; each step has its own limit and
# together they stay under 10 minutes):
#   1. tests/test_cuda.py (skipped everywhere else): GPU = CPU logits, flash attention with grouped KV heads,
#      static KV cache, torch.compile, the engine's CUDA path (bf16, fused AdamW, pinned loader) end to end;
#   2. the real trainer on MiniMind2-small (upstream's batch 32 × 512): compiled + packed + 4 loader workers, and
#      upstream's way (eager, unpacked, tokenizing in the training process) — tokens/s from its own metrics log;
#   3. scripts/bench.py: ours vs transformers in bf16 (eager and compiled) and fp32/TF32 (eager), decode, prefill,
#      RSS, loader, MFU against the measured and the datasheet peak, projected pretrain_hq epoch;
#   5. scripts/check_vllm.py: vLLM's greedy tokens on the Llama and Qwen3 exports equal ours (when vllm is installed).
# Everything lands under $OUT (default /tmp/gpu_check); the last lines printed are the summary.
#     bash scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 WANDB_MODE=disabled TOKENIZERS_PARALLELISM=false
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
: > "$OUT/summary.txt"
step() { echo "== $1 ($(date +%T))"; }

step env
{ nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  $PY -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
  echo "cpus $(nproc)"; } 2>&1 | tee "$OUT/env.txt"

step "1. tests/test_cuda.py"
timeout 100 $PY -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tail -15 | tee "$OUT/test_cuda.txt"

step "2. the trainer on MiniMind2-small"
$PY -c "import sys; sys.path.insert(0, '.'); from scripts.bench_dataset import generate_corpus
generate_corpus('$WORK/pretrain.jsonl', 12)"
trainer() {  # name, then flags
    local name=$1; shift
    timeout 100 $PY train_pretrain.py --data_path "$WORK/pretrain.jsonl" --out_dir "$WORK/$name" \
        --checkpoint_dir "$WORK/$name/ckpt" --batch_size 32 --accumulation_steps 1 --max_seq_len 512 \
        --log_interval 20 --save_interval 100000 "$@" > "$OUT/train_$name.log" 2>&1
    echo "$name exit $?"
    $PY - "$WORK/$name/logs" "$name" <<'EOF' | tee -a "$OUT/summary.txt"
import glob, json, statistics, sys
rows = [json.loads(l) for f in glob.glob(sys.argv[1] + "/*.jsonl") for l in open(f)]
steady = [r["tok_per_s"] for r in rows[1:]]  # the first window holds compilation and the first batches
print(f"trainer {sys.argv[2]}: {len(rows)} windows, steady tok/s median {statistics.median(steady):.0f}, "
      f"loss {rows[0]['loss']:.3f} -> {rows[-1]['loss']:.3f}" if steady else f"trainer {sys.argv[2]}: no log")
EOF
}
trainer compiled_packed --use_compile 1 --packing 1 --num_workers 4 --max_steps 300
trainer eager_unpacked --use_compile 0 --packing 0 --num_workers 0 --max_steps 120

step "3. bench.py bf16 (eager + compiled)"
timeout 180 $PY scripts/bench.py --presets minimind2-small --dtypes bfloat16 --data_path "$WORK/pretrain.jsonl" \
    > "$OUT/bench_bf16.log" 2>&1; echo "exit $?"
grep '^{' "$OUT/bench_bf16.log" | tail -1 > "$OUT/bench_bf16.json"
grep -v '^{' "$OUT/bench_bf16.log" | tail -14
step "4. bench.py fp32/TF32 (eager)"
timeout 100 $PY scripts/bench.py --presets minimind2-small --dtypes float32 --compile 0 --rss 0 \
    --data_path "$WORK/pretrain.jsonl" > "$OUT/bench_fp32.log" 2>&1; echo "exit $?"
grep '^{' "$OUT/bench_fp32.log" | tail -1 > "$OUT/bench_fp32.json"
grep -v '^{' "$OUT/bench_fp32.log" | tail -8
step "5. vLLM serves the exports"
timeout 150 $PY scripts/check_vllm.py 2>&1 | grep '^vllm' | tee -a "$OUT/summary.txt"
step done
cat "$OUT/summary.txt"
