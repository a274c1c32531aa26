#!/usr/bin/env bash
# Runs the measurement: each store 3 times (interleaved), then prints min/median/max.
# SCALE=full: N=10M keys, 50M updates, C=1M (the brief's workload);
# SCALE=tenth (default): N=1M, 5M updates, C=100k (10x down: full-scale runs take > 3 min).
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="$PWD/target"
cargo build --release
B=target/release/state-stores
mkdir -p results
case "${SCALE:-tenth}" in
  full)  ARGS=(--keys 10000000 --updates 50000000 --cache 1000000) ;;
  tenth) ARGS=(--keys 1000000 --updates 5000000 --cache 100000) ;;
esac
OUT="results/${SCALE:-tenth}.txt"
for i in 1 2 3; do
  for s in hashmap fjall redb; do
    "$B" run --store "$s" "${ARGS[@]}" --tag "${SCALE:-tenth}" --out "$OUT"
  done
done
"$B" summary "$OUT"
