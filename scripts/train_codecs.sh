#!/usr/bin/env bash
# Train the committed codecs, the way they were trained (weights/MANIFEST.md records each file's exact lineage):
#   1. generic q4 from scratch, then person q4 fine-tuned from it (transfer learning), distortion on whole patches;
#   2. q3, q2, q1 each fine-tuned from the rate point above, for generic and person side by side;
#   3. the low end: generic q1 from stage-2 generic q2 and generic q0 from generic q1 (whole patches, 3000 steps
#      each); person q0 from stage-2 person q1 with the distortion judged on the object's pixels only (the default
#      of `surveil train`; the station pastes nothing else);
#   4. every generic point above fine-tuned from its better-trained neighbour below (in effect, longer training):
#      q2, q3, q4 in turn (whole patches, 3000 steps each). Then the class codecs with the object loss: person q3 and
#      q4 from the generic codec of the same quality, person q1 and q2 from generic one quality up (the longer-
#      trained file; 3000 steps each); face q0 and q1 from generic of the same quality (2000 steps), then face q2,
#      q3, q4 each from the face point below (2500, 3000, 3000 steps).
# Stages whose files no committed file descends from any more (object-loss person codecs from stage 2, generic q4
# from stage-2 q3, face q3 from the first generic q3) were dropped from this script when their files were replaced;
# git log has them.
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

train generic 4 "$GENERIC_STEPS" runs/generic_q4_stage1.pt --run-dir runs/generic_q4 $OLD
stage1 generic "" "$GENERIC_STEPS" &
stage1 person "--init runs/generic_q4_stage1.pt --lr 2e-4" "$FINETUNE_STEPS"
wait
# 3. the low end
train generic 1 3000 weights/generic_q1.pt --run-dir runs/generic_q1 $OLD --init runs/generic_q2_stage1.pt \
  --lr 1e-4 &
train person 0 3000 weights/person_q0.pt --run-dir runs/person_q0 --init runs/person_q1_stage1.pt --lr 1e-4
wait
train generic 0 3000 weights/generic_q0.pt --run-dir runs/generic_q0 $OLD --init weights/generic_q1.pt --lr 1e-4 &
# 4. generic climbing from its better-trained points below; the class codecs from generic (object loss)
train generic 2 3000 weights/generic_q2.pt --run-dir runs/generic_q2_up $OLD --init weights/generic_q1.pt --lr 1e-4
wait
train generic 3 3000 weights/generic_q3.pt --run-dir runs/generic_q3_up $OLD --init weights/generic_q2.pt --lr 1e-4
train generic 4 3000 weights/generic_q4.pt --run-dir runs/generic_q4_up $OLD --init weights/generic_q3.pt --lr 1e-4 &
train person 1 3000 weights/person_q1.pt --run-dir runs/person_q1 --init weights/generic_q2.pt --lr 1e-4
wait
train person 2 3000 weights/person_q2.pt --run-dir runs/person_q2 --init weights/generic_q3.pt --lr 1e-4 &
train person 3 3000 weights/person_q3.pt --run-dir runs/person_q3 --init weights/generic_q3.pt --lr 1e-4
wait
train person 4 3000 weights/person_q4.pt --run-dir runs/person_q4 --init weights/generic_q4.pt --lr 1e-4 &
train face 0 2000 weights/face_q0.pt --run-dir runs/face_q0 --init weights/generic_q0.pt --lr 1e-4
wait
train face 1 2000 weights/face_q1.pt --run-dir runs/face_q1 --init weights/generic_q1.pt --lr 1e-4
train face 2 2500 weights/face_q2.pt --run-dir runs/face_q2 --init weights/face_q1.pt --lr 1e-4
train face 3 3000 weights/face_q3.pt --run-dir runs/face_q3 --init weights/face_q2.pt --lr 1e-4
train face 4 3000 weights/face_q4.pt --run-dir runs/face_q4 --init weights/face_q3.pt --lr 1e-4
