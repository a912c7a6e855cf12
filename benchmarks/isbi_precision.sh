#!/usr/bin/env bash
# fp32 vs bf16 autocast on ISBI 2012 (fold 0 of 6), equal 4-minute budgets, seeds 0 and 1, interleaved.
cd "$(dirname "$0")/.."  # the repository; ../shared beside it
for seed in 0 1; do
  for p in fp32 bf16; do
    echo "=== $p seed $seed $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
    drunet compare --config isbi2012 --data ../shared/datasets/isbi2012/train --models drunet \
      --budget-minutes 4 --set train.seed=$seed --set train.precision=$p --device cpu \
      --out isbi-precision/$p-s$seed 2>&1 | tail -6
  done
done
echo "=== done $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
