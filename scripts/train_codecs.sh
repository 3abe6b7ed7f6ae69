#!/usr/bin/env bash
# Train the committed codecs: the generic model from scratch at the highest rate point (q4), the person codec
# fine-tuned from it (transfer learning), then each lower rate point fine-tuned from the one above it, for both.
# The two chains are independent and run side by side, one CPU thread each. Each run resumes from
# runs/<class>_q<q>/checkpoint.pt if interrupted; a run whose weights already exist is skipped.
# Lambdas per quality: surveil/codecs/library.py QUALITY_LAMBDAS (CompressAI's q1-q4).
# Usage: scripts/train_codecs.sh [generic_steps] [finetune_steps]   (from the repository root)
set -euo pipefail
GENERIC_STEPS=${1:-4000}
FINETUNE_STEPS=${2:-2000}
THREADS=${THREADS:-1}  # one thread per run: on a shared 2-core machine two threads spin-wait on each other
SURVEIL=.venv/bin/surveil

train() {  # class quality steps [extra args]
  local class=$1 q=$2 steps=$3
  shift 3
  if [[ -f weights/${class}_q${q}.pt ]]; then
    echo "weights/${class}_q${q}.pt exists: skipping"
    return
  fi
  $SURVEIL train --class "$class" --quality "$q" --steps "$steps" --threads "$THREADS" "$@"
}

chain() {  # class: q3, q2, q1 each fine-tuned from the rate point above
  local class=$1
  for q in 3 2 1; do
    train "$class" "$q" "$FINETUNE_STEPS" --init "weights/${class}_q$((q + 1)).pt" --lr 1e-4
  done
}

train generic 4 "$GENERIC_STEPS"
train person 4 "$FINETUNE_STEPS" --init weights/generic_q4.pt --lr 2e-4
chain generic &
chain person
wait
