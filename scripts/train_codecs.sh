#!/usr/bin/env bash
# Train the committed codecs, the way they were trained (weights/MANIFEST.md records each file's exact lineage):
#   1. generic q4 from scratch, then person q4 fine-tuned from it (transfer learning), distortion on whole patches;
#   2. q3, q2, q1 each fine-tuned from the rate point above, for generic and person side by side;
#   3. person q3 and q4 fine-tuned from their stage-2 weights with the distortion judged on the object's pixels
#      only (the default of `surveil train`; the station pastes nothing else), 4000 steps each;
#   4. added later: generic q1 from generic q2 and generic q0 from generic q1 (whole patches, 3000 steps each);
#      person q0 from stage-2 person q1 (object loss, 3000 steps); person q2 and q1 fine-tuned from their stage-2
#      weights with the object loss (2500 steps each).
# One CPU thread per run: on a shared 2-core machine two threads spin-wait on each other. Each run resumes from its
# run folder if interrupted; a step whose weights already exist is skipped.
# Lambdas per quality: surveil/codecs/library.py QUALITY_LAMBDAS (CompressAI's q1-q4, q0 one halving below q1).
# Usage: scripts/train_codecs.sh [generic_steps] [finetune_steps]   (from the repository root)
set -euo pipefail
GENERIC_STEPS=${1:-4000}
FINETUNE_STEPS=${2:-2000}
THREADS=${THREADS:-1}
SURVEIL=.venv/bin/surveil
OLD="--whole-patch-loss"  # the first recipe
mkdir -p runs

train() {  # class quality steps out [extra args]
  local class=$1 q=$2 steps=$3 out=$4
  shift 4
  if [[ -f $out ]]; then
    echo "$out exists: skipping"
    return
  fi
  $SURVEIL train --class "$class" --quality "$q" --steps "$steps" --threads "$THREADS" --out "$out" "$@"
}

stage1() {  # class: q4, q3, q2, q1 with whole-patch distortion
  local class=$1 init=$2
  train "$class" 4 "$3" "runs/${class}_q4_stage1.pt" --run-dir "runs/${class}_q4" $OLD $init
  for q in 3 2 1; do
    train "$class" "$q" "$FINETUNE_STEPS" "runs/${class}_q${q}_stage1.pt" --run-dir "runs/${class}_q${q}" \
      $OLD --init "runs/${class}_q$((q + 1))_stage1.pt" --lr 1e-4
  done
}

object_stage() {  # steps quality ...: person codecs fine-tuned on object pixels from stage 2 into weights/
  local steps=$1
  shift
  for q in "$@"; do
    train person "$q" "$steps" "weights/person_q${q}.pt" --run-dir "runs/person_q${q}_obj" \
      --init "runs/person_q${q}_stage1.pt" --lr 1e-4
  done
}

train generic 4 "$GENERIC_STEPS" runs/generic_q4_stage1.pt --run-dir runs/generic_q4 $OLD
stage1 generic "" "$GENERIC_STEPS" &
stage1 person "--init runs/generic_q4_stage1.pt --lr 2e-4" "$FINETUNE_STEPS"
wait
for q in 4 3 2; do cp -n "runs/generic_q${q}_stage1.pt" "weights/generic_q${q}.pt"; done
object_stage 4000 3 &
object_stage 4000 4
wait
train generic 1 3000 weights/generic_q1.pt --run-dir runs/generic_q1 $OLD --init weights/generic_q2.pt --lr 1e-4 &
train person 0 3000 weights/person_q0.pt --run-dir runs/person_q0 --init runs/person_q1_stage1.pt --lr 1e-4
wait
train generic 0 3000 weights/generic_q0.pt --run-dir runs/generic_q0 $OLD --init weights/generic_q1.pt --lr 1e-4 &
object_stage 2500 2 1
wait
