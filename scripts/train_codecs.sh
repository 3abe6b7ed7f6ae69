#!/usr/bin/env bash
# Train the committed codecs in order: the generic model from scratch, then every other rate point and class
# fine-tuned from it (transfer learning). Each run resumes from runs/<class>_q<q>/checkpoint.pt if interrupted,
# and a run whose weights already exist is skipped.
# Usage: scripts/train_codecs.sh [generic_steps] [person_steps] [generic_finetune_steps]   (from the repo root)
set -euo pipefail
GENERIC_STEPS=${1:-4000}
PERSON_STEPS=${2:-1500}
GENERIC_FINETUNE_STEPS=${3:-1200}
THREADS=${THREADS:-1}  # one thread: on a shared 2-core machine two threads spin-wait on each other
SURVEIL=.venv/bin/surveil
declare -A LAMBDA=([1]=0.004 [2]=0.013 [3]=0.04)

train() {  # class quality steps [extra args]
  local class=$1 q=$2 steps=$3
  shift 3
  if [[ -f weights/${class}_q${q}.pt ]]; then
    echo "weights/${class}_q${q}.pt exists: skipping"
    return
  fi
  $SURVEIL train --class "$class" --quality "$q" --lambda "${LAMBDA[$q]}" --steps "$steps" --threads "$THREADS" "$@"
}

train generic 2 "$GENERIC_STEPS"
for q in 2 1 3; do
  train person "$q" "$PERSON_STEPS" --init weights/generic_q2.pt --lr 1e-4
done
for q in 1 3; do
  train generic "$q" "$GENERIC_FINETUNE_STEPS" --init weights/generic_q2.pt --lr 1e-4
done
