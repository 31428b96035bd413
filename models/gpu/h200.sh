#!/usr/bin/env bash
# One-command pretraining run for the lent H200 machine (no registry access there).
#
#   bash models/gpu/h200.sh            # on the GPU machine, from the repository root
#
# Inputs (carried from the CPU machine, see models/gpu/README.md):
#   models/work/tokenizer/             nib tokenizer (tokenizer.json ...)
#   models/work/gpu_bundle/corpus/     train.jsonl.xz, heldout.jsonl.xz (Rust + Python from the registries)
# Also uses the GPU machine's own site-packages as extra Python (permissive licences, exact dedup).
# Output: $OUT/final/ (bf16 safetensors shards <= 16 MB + config + tokenizer), $OUT/log.jsonl,
#         $OUT/loss.png, $OUT/summary.json. Export happens on the CPU machine (no optimum here).
#
# Sizing (shared/notes/environment.md, eager bf16, seq 1024, batch 64): 34.1M params ran at 713k tok/s,
# so ~7 minutes give ~300M tokens (~9 tokens/param); torch.compile should add some.
# Every knob can be overridden: e.g. TIME_MIN=0.5 HIDDEN=64 LAYERS=2 DEVICE=cpu for a smoke test.
set -euo pipefail
PY=${PY:-/opt/torch/.venv/bin/python}
[ -x "$PY" ] || PY=$(command -v python3)
OUT=${OUT:-$PWD/models/runs/h200}
DEVICE=${DEVICE:-cuda}
TIME_MIN=${TIME_MIN:-7}
HIDDEN=${HIDDEN:-512}; LAYERS=${LAYERS:-8}; HEADS=${HEADS:-8}; KV_HEADS=${KV_HEADS:-4}
SEQ=${SEQ:-1024}; BATCH=${BATCH:-64}; LR=${LR:-2e-3}; WARMUP=${WARMUP:-300}
COMPILE=${COMPILE:---compile}
SITE=${SITE:-$($PY -c 'import site; print(site.getsitepackages()[0])')}
WORK=${WORK:-/tmp/nib-gpu}
export PYTHONPATH=$PWD/models${PYTHONPATH:+:$PYTHONPATH}
export TOKENIZERS_PARALLELISM=true
mkdir -p "$WORK/carried" "$OUT"
echo "== $(date -u +%T) python $PY; out $OUT"
$PY -c 'import torch, transformers, tokenizers; print("torch", torch.__version__, "transformers", transformers.__version__, "tokenizers", tokenizers.__version__, "cuda", torch.cuda.is_available())'

# 1. carried corpus
for f in train heldout; do
  xz -dc -T0 models/work/gpu_bundle/corpus/$f.jsonl.xz > "$WORK/carried/$f.jsonl"
done
CORPORA=("$WORK/carried")
# 2. the machine's own site-packages (Python), exact dedup only (fast)
if [ "${USE_SITE:-1}" = 1 ] && [ -d "$SITE" ]; then
  echo "== $(date -u +%T) corpus from $SITE"
  $PY -m nib_models.corpus build --work "$WORK" --out "$WORK/site" --site-packages "$SITE" --no-near-dedup \
      --heldout-frac 0.02 --max-pkg-bytes 3000000 | tail -2
  CORPORA+=("$WORK/site")
fi
# 3. pretrain (resumes if $OUT/ckpt exists)
echo "== $(date -u +%T) pretrain"
$PY -m nib_models.pretrain --corpus "${CORPORA[@]}" --tokenizer models/work/tokenizer --out "$OUT" \
    --device "$DEVICE" $COMPILE --hidden "$HIDDEN" --layers "$LAYERS" --heads "$HEADS" --kv-heads "$KV_HEADS" \
    --seq-len "$SEQ" --batch-size "$BATCH" --lr "$LR" --warmup "$WARMUP" --time-budget "$TIME_MIN" \
    --eval-every 500 --eval-seqs 64 --ckpt-minutes 2 --log-every 20 --final-dtype bf16 --max-shard-size 16MB \
    --threads "${THREADS:-8}"
rm -rf "$OUT/ckpt" "$OUT/ckpt.old"   # optimizer state is large; the final weights are what comes back
ls -la "$OUT" "$OUT/final"
echo "== $(date -u +%T) done"
