#!/usr/bin/env bash
# Today's default recipe against the planned one (drunet plan) at equal wall-clock budgets, two
# seeds each, scored on a seeded held-out third of each set: ISBI 2012 (Dice and adapted Rand
# error), DSB 2018 nuclei, and synthetic thin (2-px curves), wide (discs) and mostly-empty (101²,
# 70 % empty masks) sets (benchmarks/plan_sets.py). Then the planned recipe at the long budget on
# the two shared sets, for time to quality (MINUTES against LONG).
#
# Side by side (PAIRED=1, the default): the two recipes of one set and seed train at the same
# time, each pinned to its own core with one thread (taskset, OMP_NUM_THREADS=1), so both meet the
# same machine and whatever noise it has; the long runs pair the two seeds. On 2 cores:
# 2 sets × 2 seeds × MINUTES + 3 synthetic sets × 2 seeds × SYNTH_MINUTES + 2 sets × LONG
# ≈ 40 + 30 + 60 min = 2 h 10 min at the defaults. PAIRED=0 runs one at a time on every core
# (≈ 5.5 h). Nothing else should run on the machine; the load average is printed per run.
#
#   benchmarks/plan_vs_default.sh   # WORK=plan-vs-default MINUTES=10 SYNTH_MINUTES=5 LONG=30 SEEDS="0 1"
#   SETS="" (or LONG_SETS="") runs none of those sets: only the long runs (or only the short ones);
#   LONG_SEEDS=1 pairs the two LONG_SETS at the first seed instead of the two seeds of each set;
#   LONG_RECIPE=default runs today's default at the long budget instead (does the plan's choice pay
#   where it differs, e.g. drunet_s on ISBI at 30 minutes?);
#   ARMS=plan runs only the planned recipe of each set, its two seeds side by side (after a rule
#   changed, the default's rows stand); with PLAN_NAME=plan-light PLAN_FLAGS="--set
#   data.augmentation.preset=light" the planned arm is a variant, named and tagged as such.
#   python benchmarks/plan_sets.py table plan-vs-default/results.jsonl   # the README table
set -euo pipefail
cd "$(dirname "$0")/.."  # the repository; ../shared beside it
WORK=${WORK:-plan-vs-default}
MINUTES=${MINUTES:-10}
SYNTH_MINUTES=${SYNTH_MINUTES:-5}
PAIRED=${PAIRED:-1}
LONG=${LONG:-30}
SEEDS=${SEEDS:-"0 1"}
SETS=${SETS-"isbi2012 dsb2018_nuclei synth_thin synth_wide synth_empty"}
LONG_SETS=${LONG_SETS-"isbi2012 dsb2018_nuclei"}
DEVICE=${DEVICE:-cpu}
LONG_RECIPE=${LONG_RECIPE:-plan}
case $LONG_RECIPE in plan | default) ;; *)
  echo "LONG_RECIPE=$LONG_RECIPE: use plan or default" >&2
  exit 2
  ;;
esac
# Today's default: the plan switched off, and so is the post-processing chosen on validation
# (issue 26 item 3, part of the planned recipe: it runs after every training unless switched off).
DEFAULT_FLAGS=${DEFAULT_FLAGS:-"--no-plan --set postprocess.select=false"}

python benchmarks/plan_sets.py prepare "$WORK" ../shared/datasets

plan_sets() {  # the plan's overrides for data $1 at a budget of $2 minutes, as --set=key=value
  drunet plan --data "$1" --minutes "$2" --json | python -c '
import json, sys
for key, value in json.load(sys.stdin)["overrides"].items():
    print(f"--set={key}={json.dumps(value)}")'
}

run() {  # set recipe seed minutes
  local set=$1 recipe=$2 seed=$3 minutes=$4 flags=() sets label=$2
  local name="$set-$recipe-s$seed-m$minutes" data="$WORK/$set/trainval"
  if [ "$recipe" = plan ]; then
    sets=$(plan_sets "$data" "$minutes")  # a failing plan stops the script
    [ -n "$sets" ] && mapfile -t flags <<< "$sets"
    if [ -n "${PLAN_NAME:-}" ]; then  # a variant of the plan: its own name, PLAN_FLAGS added
      label=$PLAN_NAME name="$set-$PLAN_NAME-s$seed-m$minutes"
      read -r -a extra <<< "${PLAN_FLAGS:-}"
      flags+=("${extra[@]}")
    fi
    drunet plan --data "$data" --minutes "$minutes" > "$WORK/$name.plan.txt"
  else
    read -r -a flags <<< "$DEFAULT_FLAGS"
  fi
  echo "=== $name ${flags[*]} $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  $PIN drunet train --data "$data" --runs-dir "$WORK/runs" --name "$name" --device "$DEVICE" -q \
    --epochs 100000 --set train.max_minutes="$minutes" --set train.seed="$seed" "${flags[@]}" \
    2>&1 | tail -2
  local rand=()
  [ "$set" = isbi2012 ] && rand=(--rand)
  python benchmarks/plan_sets.py score "$WORK/runs/$name" "$WORK/$set/heldout" "${rand[@]}" \
    --tag "{\"set\": \"$set\", \"recipe\": \"$label\", \"seed\": $seed, \"minutes\": $minutes}" \
    | tee -a "$WORK/results.jsonl"
}

pinned() {  # core command... : on one core with one thread (PAIRED=1), else on every core
  local core=$1
  shift
  if [ "$PAIRED" = 1 ]; then
    PIN="taskset -c $core" OMP_NUM_THREADS=1 "$@" > "$WORK/log.$core" 2>&1
  else
    PIN="" "$@"
  fi
}

both() {  # run A on core 0 and run B on core 1, side by side (one after the other if PAIRED=0)
  local -a a=($1) b=($2)
  if [ "$PAIRED" = 1 ]; then
    pinned 0 "${a[@]}" &
    pinned 1 "${b[@]}" &
    wait
    cat "$WORK/log.0" "$WORK/log.1"
  else
    pinned 0 "${a[@]}"
    pinned 1 "${b[@]}"
  fi
}

read -r -a seeds <<< "$SEEDS"
for set in $SETS; do
  minutes=$MINUTES
  case $set in synth_*) minutes=$SYNTH_MINUTES ;; esac
  if [ "${ARMS:-both}" = plan ]; then  # the planned recipe only (after a rule changed): seeds paired
    both "run $set plan ${seeds[0]} $minutes" "run $set plan ${seeds[1]:-${seeds[0]}} $minutes"
    continue
  fi
  for seed in $SEEDS; do
    both "run $set default $seed $minutes" "run $set plan $seed $minutes"
  done
done
read -r -a long_sets <<< "$LONG_SETS"
if [ "${LONG_SEEDS:-2}" = 1 ] && [ "${#long_sets[@]}" = 2 ]; then
  # one seed at LONG minutes, the two sets side by side (half the time of the two-seed pairing)
  both "run ${long_sets[0]} $LONG_RECIPE ${seeds[0]} $LONG" "run ${long_sets[1]} $LONG_RECIPE ${seeds[0]} $LONG"
else
  for set in $LONG_SETS; do  # time to quality: the planned recipe at LONG minutes
    both "run $set $LONG_RECIPE ${seeds[0]} $LONG" "run $set $LONG_RECIPE ${seeds[1]:-${seeds[0]}} $LONG"
  done
fi
python benchmarks/plan_sets.py table "$WORK/results.jsonl"
echo "=== done $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
