#!/usr/bin/env bash
# Today's default recipe against the planned one (drunet plan) at equal wall-clock budgets, two
# seeds each, scored on a seeded held-out third of each set: ISBI 2012 (Dice and adapted Rand
# error), DSB 2018 nuclei, and synthetic thin (2-px curves), wide (discs) and mostly-empty (101²,
# 70 % empty masks) sets (benchmarks/plan_sets.py). Then the planned recipe at the long budget on
# the two shared sets, for time to quality (10 against 30 minutes). One run at a time, on a quiet
# machine: 5 sets × 2 seeds × 2 recipes × 10 min + 2 × 2 × 30 min ≈ 5.5 hours on the CPU.
#
#   benchmarks/plan_vs_default.sh              # WORK=plan-vs-default MINUTES=10 LONG=30 SEEDS="0 1"
#   python benchmarks/plan_sets.py table plan-vs-default/results.jsonl   # the README table
set -euo pipefail
cd "$(dirname "$0")/.."  # the repository; ../shared beside it
WORK=${WORK:-plan-vs-default}
MINUTES=${MINUTES:-10}
LONG=${LONG:-30}
SEEDS=${SEEDS:-"0 1"}
SETS=${SETS:-"isbi2012 dsb2018_nuclei synth_thin synth_wide synth_empty"}
DEVICE=${DEVICE:-cpu}
# Today's default, whatever drunet train plans by itself: the plan switched off when it has one.
DEFAULT_FLAGS=${DEFAULT_FLAGS:-$(drunet train --help | grep -q -- "--no-plan" && echo --no-plan || true)}

python benchmarks/plan_sets.py prepare "$WORK" ../shared/datasets

plan_sets() {  # the plan's overrides for data $1 at a budget of $2 minutes, as --set=key=value
  drunet plan --data "$1" --minutes "$2" --json | python -c '
import json, sys
for key, value in json.load(sys.stdin)["overrides"].items():
    print(f"--set={key}={json.dumps(value)}")'
}

run() {  # set recipe seed minutes
  local set=$1 recipe=$2 seed=$3 minutes=$4 flags=() sets
  local name="$set-$recipe-s$seed-m$minutes" data="$WORK/$set/trainval"
  if [ "$recipe" = plan ]; then
    sets=$(plan_sets "$data" "$minutes")  # a failing plan stops the script
    [ -n "$sets" ] && mapfile -t flags <<< "$sets"
    drunet plan --data "$data" --minutes "$minutes" > "$WORK/$name.plan.txt"
  else
    read -r -a flags <<< "$DEFAULT_FLAGS"
  fi
  echo "=== $name ${flags[*]} $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  drunet train --data "$data" --runs-dir "$WORK/runs" --name "$name" --device "$DEVICE" -q \
    --epochs 100000 --set train.max_minutes="$minutes" --set train.seed="$seed" "${flags[@]}" \
    2>&1 | tail -2
  local rand=()
  [ "$set" = isbi2012 ] && rand=(--rand)
  python benchmarks/plan_sets.py score "$WORK/runs/$name" "$WORK/$set/heldout" "${rand[@]}" \
    --tag "{\"set\": \"$set\", \"recipe\": \"$recipe\", \"seed\": $seed, \"minutes\": $minutes}" \
    | tee -a "$WORK/results.jsonl"
}

for set in $SETS; do
  for seed in $SEEDS; do
    for recipe in default plan; do
      run "$set" "$recipe" "$seed" "$MINUTES"
    done
  done
done
for set in isbi2012 dsb2018_nuclei; do
  for seed in $SEEDS; do
    run "$set" plan "$seed" "$LONG"
  done
done
python benchmarks/plan_sets.py table "$WORK/results.jsonl"
echo "=== done $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
