#!/usr/bin/env bash
# Train the committed codecs, the way they were trained (weights/MANIFEST.md records each file's exact lineage):
#   1. generic q4 from scratch, then q3 and q2 each fine-tuned from the rate point above (whole-patch distortion);
#   2. the low end: generic q1 from stage-1 generic q2 and generic q0 from generic q1 (whole patches, 3000 steps
#      each);
#   3. every generic point above fine-tuned from its better-trained neighbour below (in effect, longer training):
#      q2, q3, q4 in turn (whole patches, 3000 steps each). Then the first class codecs with the distortion judged
#      on the object's pixels only (the default of `surveil train`; the station pastes nothing else): person q1, q2
#      from generic one quality up, person q4 from generic q4 (3000 steps each); face q0 and q1 from generic of the
#      same quality (2000 steps), then face q2, q3, q4 each from the face point below (2500, 3000, 3000 steps);
#   4. longer class training: person q0 from generic q1 and person q3 from generic q4, then every person point and
#      face q4 continued 3000 steps from its stage-3/4 file; face q1 and q2 from generic one quality up;
#   5. face q0 to q3 each continued 3000 steps from its stage-3/4 file, and every person point 3000 more again;
#   6. face q3 and q4 continued 3000 more steps;
#   7. face q2, q3 and q4 each continued twice more, 3000 steps at a time;
#   8. every face and person point continued once more from its stage-5/7 file: 3000 steps at a peak learning rate
#      of 3e-4 instead of 1e-4, with a new patch seed (every earlier stage drew seed 0's patches), the transforms in
#      bfloat16 (`--precision bf16`; fp32 on a CPU without native bf16, see PRECISION);
#   9. every face and person point continued once more from its stage-8 file: the stage-8 recipe, patch seed 2;
#  10. every face and person point continued once more from its stage-9 file: the same recipe, patch seed 3;
#  11. every person point continued once more from its stage-10 file: the same recipe, patch seed 4;
#  12. every face point from its stage-10 file (patch seed 4), person q1 to q4 from their stage-11 files (seed 5);
#  13. face q0 and q1 (patch seed 5) and person q1 and q2 (seed 6) from their stage-12 files;
#  14. face q2 to q4 (patch seed 5) and person q3 and q4 (seed 6) from their stage-12 files, person q0 from its
#      stage-11 file at a peak learning rate of 1e-4 (seed 5);
#  15. face q0 and q1 (patch seed 6) and person q1 and q2 (seed 7) from their stage-13 files;
#  16. person q3 and q4 (patch seed 7) from their stage-14 files;
#  17. face q2 (patch seed 6) from its stage-14 file; person q0 from its stage-14 file at a peak learning rate of
#      1e-4 (seed 6);
#  18. the high tier: each face point's committed fast file with attention, a checkerboard context and a Gaussian
#      mixture added (codecs/mixture.py), fine-tuned 2000 steps (peak lr 3e-4, patch seed 8, fp32), after the
#      fast-tier rounds above;
#  19. each face high point continued 2000 steps from its stage-18 file (the same recipe, patch seed 9), and the
#      person high tier built on the committed person fast files by the stage-18 recipe;
#  20. each face high point continued 2000 steps from its stage-19 file (patch seed 10), each person high point
#      from its stage-19 file (patch seed 9);
#  21. each face high point continued 2000 steps from its stage-20 file (patch seed 11; q0 and q1 a session
#      after q2 to q4), each person high point from its stage-20 file (patch seed 10);
#  22. each face high point continued 2000 steps from its stage-21 file (patch seed 12), each person high point
#      from its stage-21 file (patch seed 11);
#  23. each person high point continued 2000 steps from its stage-22 file (patch seed 12), and face high q1 to q4
#      from their stage-22 files (patch seed 13; face q0's stage-23 candidate gained nothing and was not kept);
#  24 to 27. each face high point continued 2000 steps from its last file, one round a stage (patch seeds 14 to
#      17; stage 24 started q0 from stage 22, the rest from stage 23);
#  28. face high q4 continued 2000 steps from its stage-27 file (patch seed 18), and face high q0 to q3 from
#      their stage-27 files in batches of 16 instead of 8 (patch seed 18; the batch-8 stage-28 candidates of q0 to
#      q3 gained nothing and were not kept);
#  29 to 32. face high q4 continued 2000 steps from its last file, one round a stage (patch seeds 19 to 22);
#  34. the generic high tier: each generic point's committed fast file with the stage-18 additions, fine-tuned 2000
#      steps on the generic crops with the generic codec's whole-patch loss (peak lr 3e-4, patch seed 8, fp32);
#  35. each generic high point continued 2000 steps from its stage-34 file (patch seed 9);
#  36 to 39. each generic high point continued 2000 steps from its last file, one round a stage (patch seeds 10
#      to 13);
#  40. the person high tier moved to its own ladder, two halvings below the shared one (surveil/codecs/library.py
#      CLASS_QUALITY_LAMBDAS): q0 and q1 fine-tuned 2000 steps from the stage-23 q0 file at two and one halvings below
#      its lambda, q2 continued 2000 steps from it at its own (the high-tier recipe, patch seed 13); q3 and q4 are the
#      stage-23 q1 and q2 files under their new qualities (0 steps: the same weights and lambdas), their 2000-step
#      continuations having judged no better;
#  41 and 42. person high q0 to q2 each continued 2000 steps from its last file, one round a stage (patch seeds 14
#      and 15);
#  43. person high q3 and q4 continued 2000 steps from their stage-40 files in batches of 16 instead of 8 (patch
#      seed 16; their batch-8 continuations at stage 40 had gained nothing).
# Stages whose files no committed file descends from any more were dropped from this script when their files were
# replaced; git log has them. Intermediate files go to runs/, committed ones to weights/.
# One CPU thread per run: on a shared 2-core machine two threads spin-wait on each other. Each run resumes from its
# run folder if interrupted; a step whose weights already exist is skipped.
# Lambdas per quality: surveil/codecs/library.py QUALITY_LAMBDAS (CompressAI's q1-q4, q0 one halving below q1),
# except where CLASS_QUALITY_LAMBDAS gives a (class, tier) its own ladder (person high, stage 40).
# Usage: scripts/train_codecs.sh [generic_steps] [finetune_steps]   (from the repository root)
set -euo pipefail
GENERIC_STEPS=${1:-4000}
FINETUNE_STEPS=${2:-2000}
THREADS=${THREADS:-1}
SURVEIL=.venv/bin/surveil
WHOLE="--whole-patch-loss"
# Stages 8 on trained in bfloat16 on a CPU with AVX-512 BF16; a CPU without native bf16 emulates it some 25 times
# slower than fp32 (surveil/pipelines/train.py), so such a CPU trains them in fp32.
PRECISION=${PRECISION:-$(.venv/bin/python -c 'import torch; from surveil.pipelines.train import native_bf16
print("bf16" if native_bf16(torch.device("cpu")) else "fp32")')}
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

# The recipe of every 3000-step class fine-tune and continuation below (generic ones add $WHOLE, so spell it out).
finetune() {  # class quality out run_dir init
  train "$1" "$2" 3000 "$3" --run-dir "$4" --init "$5" --lr 1e-4
}

# 1. generic from scratch, then down the rate points
train generic 4 "$GENERIC_STEPS" runs/generic_q4_stage1.pt --run-dir runs/generic_q4 $WHOLE
for q in 3 2; do
  train generic "$q" "$FINETUNE_STEPS" "runs/generic_q${q}_stage1.pt" --run-dir "runs/generic_q${q}" $WHOLE \
    --init "runs/generic_q$((q + 1))_stage1.pt" --lr 1e-4
done
# 2. the low end
train generic 1 3000 weights/generic_q1.pt --run-dir runs/generic_q1 $WHOLE --init runs/generic_q2_stage1.pt --lr 1e-4
train generic 0 3000 weights/generic_q0.pt --run-dir runs/generic_q0 $WHOLE --init weights/generic_q1.pt --lr 1e-4 &
# 3. generic climbing from its better-trained points below; the first class codecs from generic (object loss)
train generic 2 3000 weights/generic_q2.pt --run-dir runs/generic_q2_up $WHOLE --init weights/generic_q1.pt --lr 1e-4
wait
train generic 3 3000 weights/generic_q3.pt --run-dir runs/generic_q3_up $WHOLE --init weights/generic_q2.pt --lr 1e-4
train generic 4 3000 weights/generic_q4.pt --run-dir runs/generic_q4_up $WHOLE --init weights/generic_q3.pt --lr 1e-4 &
finetune person 1 runs/person_q1_stage3.pt runs/person_q1 weights/generic_q2.pt
wait
finetune person 2 runs/person_q2_stage3.pt runs/person_q2 weights/generic_q3.pt &
finetune person 4 runs/person_q4_stage3.pt runs/person_q4 weights/generic_q4.pt
wait
train face 0 2000 runs/face_q0_stage3.pt --run-dir runs/face_q0 --init weights/generic_q0.pt --lr 1e-4 &
train face 1 2000 runs/face_q1_stage3.pt --run-dir runs/face_q1 --init weights/generic_q1.pt --lr 1e-4
wait
train face 2 2500 runs/face_q2_stage3.pt --run-dir runs/face_q2 --init runs/face_q1_stage3.pt --lr 1e-4
finetune face 3 runs/face_q3_stage3.pt runs/face_q3 runs/face_q2_stage3.pt
finetune face 4 runs/face_q4_stage3.pt runs/face_q4 runs/face_q3_stage3.pt
# 4. longer class training (object loss, 3000 steps each)
finetune person 0 runs/person_q0_stage4.pt runs/person_q0_g1 weights/generic_q1.pt &
finetune person 3 runs/person_q3_stage4.pt runs/person_q3_g4 weights/generic_q4.pt
wait
finetune person 0 runs/person_q0_cont.pt runs/person_q0_cont runs/person_q0_stage4.pt &
finetune person 3 runs/person_q3_cont.pt runs/person_q3_cont runs/person_q3_stage4.pt
wait
finetune person 1 runs/person_q1_cont.pt runs/person_q1_cont runs/person_q1_stage3.pt &
finetune person 2 runs/person_q2_cont.pt runs/person_q2_cont runs/person_q2_stage3.pt
wait
finetune person 4 runs/person_q4_cont.pt runs/person_q4_cont runs/person_q4_stage3.pt &
finetune face 4 runs/face_q4_cont.pt runs/face_q4_cont runs/face_q4_stage3.pt
wait
finetune face 1 runs/face_q1_stage4.pt runs/face_q1_g2 weights/generic_q2.pt &
finetune face 2 runs/face_q2_stage4.pt runs/face_q2_g3 weights/generic_q3.pt
wait
# 5. the face points below q4 and every person point trained longer (object loss, 3000 steps each)
finetune face 0 runs/face_q0_cont.pt runs/face_q0_cont runs/face_q0_stage3.pt &
finetune face 1 runs/face_q1_cont.pt runs/face_q1_cont runs/face_q1_stage4.pt
wait
finetune face 2 runs/face_q2_cont.pt runs/face_q2_cont runs/face_q2_stage4.pt &
finetune face 3 runs/face_q3_cont.pt runs/face_q3_cont runs/face_q3_stage3.pt
wait
finetune person 0 runs/person_q0_cont2.pt runs/person_q0_cont2 runs/person_q0_cont.pt &
finetune person 1 runs/person_q1_cont2.pt runs/person_q1_cont2 runs/person_q1_cont.pt
wait
finetune person 2 runs/person_q2_cont2.pt runs/person_q2_cont2 runs/person_q2_cont.pt &
finetune person 3 runs/person_q3_cont2.pt runs/person_q3_cont2 runs/person_q3_cont.pt
wait
finetune person 4 runs/person_q4_cont2.pt runs/person_q4_cont2 runs/person_q4_cont.pt
# 6. the face high end trained longer again (object loss, 3000 steps each)
finetune face 3 runs/face_q3_cont2.pt runs/face_q3_cont2 runs/face_q3_cont.pt &
finetune face 4 runs/face_q4_cont2.pt runs/face_q4_cont2 runs/face_q4_cont.pt
wait
# 7. face q2 to q4 trained longer again, twice (object loss, 3000 steps each)
finetune face 2 runs/face_q2_cont2.pt runs/face_q2_cont2 runs/face_q2_cont.pt &
finetune face 3 runs/face_q3_cont3.pt runs/face_q3_cont3 runs/face_q3_cont2.pt
wait
finetune face 4 runs/face_q4_cont3.pt runs/face_q4_cont3 runs/face_q4_cont2.pt &
finetune face 2 runs/face_q2_cont3.pt runs/face_q2_cont3 runs/face_q2_cont2.pt
wait
finetune face 3 runs/face_q3_cont4.pt runs/face_q3_cont4 runs/face_q3_cont3.pt &
finetune face 4 runs/face_q4_cont4.pt runs/face_q4_cont4 runs/face_q4_cont3.pt
wait
# 8. every face and person point once more: lr 3e-4, patch seed 1, bfloat16 transforms (object loss, 3000 steps)
refresh() {  # class quality out run_dir init seed
  train "$1" "$2" 3000 "$3" --run-dir "$4" --init "$5" --lr 3e-4 --seed "$6" --precision "$PRECISION"
}
for q in 0 1; do
  refresh face "$q" "runs/face_q${q}_s8.pt" "runs/face_q${q}_s8" "runs/face_q${q}_cont.pt" 1 &
  refresh person "$q" "runs/person_q${q}_s8.pt" "runs/person_q${q}_s8" "runs/person_q${q}_cont2.pt" 1
  wait
done
refresh face 2 runs/face_q2_s8.pt runs/face_q2_s8 runs/face_q2_cont3.pt 1 &
refresh person 2 runs/person_q2_s8.pt runs/person_q2_s8 runs/person_q2_cont2.pt 1
wait
refresh face 3 runs/face_q3_s8.pt runs/face_q3_s8 runs/face_q3_cont4.pt 1 &
refresh person 3 runs/person_q3_s8.pt runs/person_q3_s8 runs/person_q3_cont2.pt 1
wait
refresh face 4 runs/face_q4_s8.pt runs/face_q4_s8 runs/face_q4_cont4.pt 1 &
refresh person 4 runs/person_q4_s8.pt runs/person_q4_s8 runs/person_q4_cont2.pt 1
wait
# 9 onwards: rounds of the stage-8 recipe. Each continues some points of one class for 3000 steps, each point from
# its file of the last earlier round that names it (stage 8 for the first), with a new patch seed. A point's file
# of the last round that names it is its committed file (FINAL, derived from ROUNDS); every other stage's file
# goes to runs/. A candidate that judged worse than the file it started from (scripts/judge_candidates.py) was not
# kept, and its run is not listed.
ROUNDS=(  # stage class patch_seed peak_lr qualities..., in order
  "9 face 2 3e-4 0 1 2 3 4"
  "9 person 2 3e-4 0 1 2 3 4"
  "10 face 3 3e-4 0 1 2 3 4"
  "10 person 3 3e-4 0 1 2 3 4"
  "11 person 4 3e-4 0 1 2 3 4"
  "12 face 4 3e-4 0 1 2 3 4"
  "12 person 5 3e-4 1 2 3 4"  # person q0 from stage 11 came out worse at lr 3e-4
  "13 face 5 3e-4 0 1"  # stage 13 trained in fp32 (an AVX2-only CPU) and only these points, for time
  "13 person 6 3e-4 1 2"
  "14 face 5 3e-4 2 3 4"  # stage 14 (fp32): the points stage 13 left out
  "14 person 5 1e-4 0"  # at a peak lr of 1e-4: at 3e-4 person q0 had stopped gaining
  "14 person 6 3e-4 3 4"
  "15 face 6 3e-4 0 1"  # stage 15 (fp32)
  "15 person 7 3e-4 1 2"
  "16 person 7 3e-4 3 4"  # stage 16 (fp32)
  "17 face 6 3e-4 2"  # stage 17 (fp32)
  "17 person 6 1e-4 0"
)
declare -A FINAL=()
for spec in "${ROUNDS[@]}"; do
  read -r stage class _ _ qualities <<<"$spec"
  for q in $qualities; do
    FINAL[${class}_q$q]=$stage
  done
done
file_of() {  # class (or class_high for the high tier) quality stage
  if [[ ${FINAL[$1_q$2]} == "$3" ]]; then
    echo "weights/$1_q$2.pt"
  else
    echo "runs/$1_q$2_s$3.pt"
  fi
}
declare -A LAST=()  # class_q or class_high_q -> the stage of that point's latest round so far
for q in 0 1 2 3 4; do
  LAST[face_q$q]=8
  LAST[person_q$q]=8
done
round() {  # stage class patch_seed peak_lr qualities...; two runs at a time, one a core
  local stage=$1 class=$2 seed=$3 lr=$4 running=0 init
  shift 4
  for q in "$@"; do
    init=$(file_of "$class" "$q" "${LAST[${class}_q$q]}")
    LAST[${class}_q$q]=$stage
    train "$class" "$q" 3000 "$(file_of "$class" "$q" "$stage")" --run-dir "runs/${class}_q${q}_s$stage" \
      --init "$init" --lr "$lr" --seed "$seed" --precision "$PRECISION" &
    ((++running % 2)) || wait
  done
  wait
}
for spec in "${ROUNDS[@]}"; do
  # shellcheck disable=SC2086  # the spec's words are round's arguments
  round $spec
done
# 18 onwards: rounds of the high tier's 2000-step recipe (fp32). A point's first round starts from the class's
# committed fast file; each later round continues that point's file of the last earlier round that names it, and a
# point's file of the last round that names it is its committed file.
HIGH_ROUNDS=(  # stage class patch_seed batch qualities..., in order; one stage's runs share the 2 cores
  "18 face 8 8 0 1 2 3 4"
  "19 face 9 8 0 1 2 3 4"
  "19 person 8 8 0 1 2 3 4"
  "20 face 10 8 0 1 2 3 4"
  "20 person 9 8 0 1 2 3 4"
  "21 face 11 8 0 1 2 3 4"
  "21 person 10 8 0 1 2 3 4"
  "22 face 12 8 0 1 2 3 4"
  "22 person 11 8 0 1 2 3 4"
  "23 person 12 8 0 1 2 3 4"
  "23 face 13 8 1 2 3 4"
  "24 face 14 8 0 1 2 3 4"
  "25 face 15 8 0 1 2 3 4"
  "26 face 16 8 0 1 2 3 4"
  "27 face 17 8 0 1 2 3 4"
  "28 face 18 8 4"
  "28 face 18 16 0 1 2 3"
  "29 face 19 8 4"
  "30 face 20 8 4"
  "31 face 21 8 4"
  "32 face 22 8 4"
  "34 generic 8 8 0 1 2 3 4"
  "35 generic 9 8 0 1 2 3 4"
  "36 generic 10 8 0 1 2 3 4"
  "37 generic 11 8 0 1 2 3 4"
  "38 generic 12 8 0 1 2 3 4"
  "39 generic 13 8 0 1 2 3 4"
)
LADDER_ROUNDS=(  # after stage 40, the same recipe on the person high ladder: stage class patch_seed batch qualities...
  "41 person 14 8 0 1 2"
  "42 person 15 8 0 1 2"
  "43 person 16 16 3 4"
)
final_high() {  # round specs: each point's last round writes its committed file
  local spec stage class qualities q
  for spec in "$@"; do
    read -r stage class _ _ qualities <<<"$spec"
    for q in $qualities; do
      FINAL[${class}_high_q$q]=$stage
    done
  done
}
final_high "${HIGH_ROUNDS[@]}"
for q in 0 1 2 3 4; do
  FINAL[person_high_q$q]=40  # the person ladder's stage below; its stage-23 files stay in runs/
done
final_high "${LADDER_ROUNDS[@]}"
high_round() {  # stage class patch_seed batch qualities...; two runs at a time, counting across one stage
  local stage=$1 class=$2 seed=$3 batch=$4 q init loss=()
  shift 4
  [[ $class == generic ]] && loss=("$WHOLE")  # the loss its fast tier was trained with
  for q in "$@"; do
    if [[ -z ${LAST[${class}_high_q$q]:-} ]]; then
      init=weights/${class}_q$q.pt
    else
      init=$(file_of "${class}_high" "$q" "${LAST[${class}_high_q$q]}")
    fi
    LAST[${class}_high_q$q]=$stage
    train "$class" "$q" 2000 "$(file_of "${class}_high" "$q" "$stage")" --tier high \
      --run-dir "runs/${class}_high_q${q}_s$stage" --init "$init" --lr 3e-4 --seed "$seed" --batch "$batch" \
      --precision fp32 "${loss[@]}" &
    ((++running % 2)) || wait
  done
}
high_rounds() {  # round specs, in order; a stage's runs share the 2 cores, the next stage waits for them
  local spec stage previous_stage=
  running=0
  for spec in "$@"; do
    read -r stage _ <<<"$spec"
    if [[ $stage != "$previous_stage" ]]; then
      wait
      running=0
      previous_stage=$stage
    fi
    # shellcheck disable=SC2086  # the spec's words are high_round's arguments
    high_round $spec
  done
  wait
}
high_rounds "${HIGH_ROUNDS[@]}"
# 40. the person high ladder: q0 to q2 from the stage-23 q0 file (two runs at a time), q3 and q4 renamed
running=0
for q in 0 1 2; do
  train person "$q" 2000 "$(file_of person_high "$q" 40)" --tier high --run-dir "runs/person_high_q${q}_s40" \
    --init "$(file_of person_high 0 23)" --lr 3e-4 --seed 13 --batch 8 --precision fp32 &
  ((++running % 2)) || wait
done
wait
for q in 3 4; do
  train person "$q" 0 "$(file_of person_high "$q" 40)" --tier high --run-dir "runs/person_high_q${q}_s40" \
    --init "$(file_of person_high $((q - 2)) 23)"
done
for q in 0 1 2 3 4; do
  LAST[person_high_q$q]=40
done
# 41 onwards: rounds on the person high ladder, each continuing that point's last file
high_rounds "${LADDER_ROUNDS[@]}"
