#!/usr/bin/env bash
# Fine-tune one class's codecs from the generic codec of the same tier and quality (transfer learning), one quality
# after the other, with the object loss (the default of `surveil train`). A quality whose generic weights do not
# exist starts from the generic codec of the next quality up (its lambda is still the quality's own).
# TIER=high starts each quality from the class's own committed fast codec of that quality instead (the high tier
# is built on it: codecs/mixture.py), at a peak learning rate of 3e-4 (LR overrides either tier's default).
# Each run resumes from its run folder if interrupted; a quality whose weights already exist is skipped.
# The weights go to OUT_DIR (default runs/candidates), beside copies of the generic codecs, never straight into
# weights/: a running edge would pick them up. Judge them with
#   .venv/bin/surveil eval-codec --class CLASS --weights-dir runs/candidates
# and copy into weights/ only what beats the generic codec.
# Usage: scripts/train_class_codecs.sh CLASS STEPS [QUALITY ...]    (from the repository root)
#   TIER=high for the high-efficiency tier, DEVICE=cuda on a GPU, THREADS=1 beside another CPU training,
#   PRECISION=bf16 for the transforms under bfloat16 autocast (about 1.7x faster on a CPU with AVX-512 BF16).
set -euo pipefail
CLASS=$1
STEPS=$2
shift 2
if [[ $# -gt 0 ]]; then QUALITIES=("$@"); else QUALITIES=(3 2 4 1 0); fi
TIER=${TIER:-fast}
DEVICE=${DEVICE:-cpu}
THREADS=${THREADS:-1}
PRECISION=${PRECISION:-fp32}
if [[ $TIER == high ]]; then LR=${LR:-3e-4}; else LR=${LR:-1e-4}; fi
OUT_DIR=${OUT_DIR:-runs/candidates}
SURVEIL=.venv/bin/surveil
mkdir -p "$OUT_DIR"

name() {  # folder class quality -> weight file
  if [[ $TIER == fast ]]; then echo "${1}/${2}_q${3}.pt"; else echo "${1}/${2}_${TIER}_q${3}.pt"; fi
}

for q in "${QUALITIES[@]}"; do
  out=$(name "$OUT_DIR" "$CLASS" "$q")
  if [[ -f $out ]]; then
    echo "$out exists: skipping"
    continue
  fi
  if [[ $TIER == high ]]; then
    init=weights/${CLASS}_q$q.pt
  else
    init=$(name weights generic "$q")
    for up in $((q + 1)) $((q + 2)) $((q + 3)); do
      [[ -f $init ]] && break
      init=$(name weights generic "$up")
    done
  fi
  if [[ ! -f $init ]]; then
    echo "no codec to start $out from ($init)" >&2
    exit 1
  fi
  cp weights/generic_*.pt "$OUT_DIR/"  # the eval compares with generic from the same folder
  if [[ $TIER == high ]]; then cp weights/"${CLASS}"_q*.pt "$OUT_DIR/"; fi  # and the high tier with the fast one
  $SURVEIL train --class "$CLASS" --quality "$q" --tier "$TIER" --steps "$STEPS" --init "$init" --lr "$LR" \
    --device "$DEVICE" --threads "$THREADS" --precision "$PRECISION" --out "$out" --run-dir "runs/$(basename "$out" .pt)"
done
