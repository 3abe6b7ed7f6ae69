#!/usr/bin/env bash
# Train the committed codecs, the way they were trained (weights/MANIFEST.md records each file's exact lineage):
#   1. generic q4 from scratch, then person q4 fine-tuned from it (transfer learning), distortion on whole patches;
#   2. q3, q2, q1 each fine-tuned from the rate point above, for generic and person side by side;
#   3. person q3 fine-tuned from its stage-2 weights with the distortion judged on the object's pixels only (the
#      default of `surveil train`; the station pastes nothing else), 4000 steps;
#   4. added later: generic q1 from generic q2 and generic q0 from generic q1 (whole patches, 3000 steps each);
#      person q0 from stage-2 person q1 (object loss, 3000 steps); person q2 and q1 fine-tuned from their stage-2
#      weights with the object loss (2500 steps each);
#   5. the weakest rate points fine-tuned from a better-trained neighbour: generic q2 from q1 and q4 from q3, person
#      q4 from q3; and the face codecs (object loss): q3, q1 and q0 from generic of the same quality, q2 from face
#      q1, q4 from face q3.
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
cp -n runs/generic_q3_stage1.pt weights/generic_q3.pt
object_stage 4000 3
# 4. the low end
train generic 1 3000 weights/generic_q1.pt --run-dir runs/generic_q1 $OLD --init runs/generic_q2_stage1.pt \
  --lr 1e-4 &
train person 0 3000 weights/person_q0.pt --run-dir runs/person_q0 --init runs/person_q1_stage1.pt --lr 1e-4
wait
train generic 0 3000 weights/generic_q0.pt --run-dir runs/generic_q0 $OLD --init weights/generic_q1.pt --lr 1e-4 &
object_stage 2500 2 1
wait
# 5. the weakest points fine-tuned from a better-trained neighbour (in effect, longer training)
train generic 2 3000 weights/generic_q2.pt --run-dir runs/generic_q2_up $OLD --init weights/generic_q1.pt --lr 1e-4 &
train generic 4 3000 weights/generic_q4.pt --run-dir runs/generic_q4_up $OLD --init weights/generic_q3.pt --lr 1e-4
wait
train person 4 3000 weights/person_q4.pt --run-dir runs/person_q4_up --init weights/person_q3.pt --lr 1e-4 &
# face: the class recipe of scripts/train_class_codecs.sh (object loss, from generic), then neighbours
train face 3 2000 weights/face_q3.pt --run-dir runs/face_q3 --init weights/generic_q3.pt --lr 1e-4
wait
train face 0 2000 weights/face_q0.pt --run-dir runs/face_q0 --init weights/generic_q0.pt --lr 1e-4 &
train face 1 2000 weights/face_q1.pt --run-dir runs/face_q1 --init weights/generic_q1.pt --lr 1e-4
wait
train face 2 2500 weights/face_q2.pt --run-dir runs/face_q2 --init weights/face_q1.pt --lr 1e-4 &
train face 4 3000 weights/face_q4.pt --run-dir runs/face_q4 --init weights/face_q3.pt --lr 1e-4
wait
