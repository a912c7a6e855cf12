#!/usr/bin/env bash
# drunet_s against drunet_s2 (the default since 2026-12-02) on ISBI 2012 (fold 0 of 6): equal
# 6-minute budgets, bfloat16 autocast (precision auto on this CPU), seeds 0 and 1, one run at a time.
cd "$(dirname "$0")/.."  # the repository; ../shared beside it
for seed in 0 1; do
  echo "=== seed $seed $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  drunet compare --config isbi2012 --data ../shared/datasets/isbi2012/train \
    --models drunet_s,drunet_s2 --budget-minutes 6 --set train.seed=$seed --device cpu \
    --out isbi-default/s$seed 2>&1 | tail -6
done
echo "=== done $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
