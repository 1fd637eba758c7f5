#!/usr/bin/env bash
# bench/plan.sh — how planning scales: `multiarch plan --format json` for projects of 10, 100
# and 1000 images (two platforms, two registries, three tags each), against `multiarch check`
# of the same file (parse + resolve only) as the baseline measured in the same run.
#
# Needs nothing but the release binary (built once unless MULTIARCH=path is given).
# Knobs: SIZES="10 100 1000" RUNS=5
set -Eeuo pipefail

SIZES=${SIZES:-"10 100 1000"}
RUNS=${RUNS:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z "${MULTIARCH:-}" ]]; then
  (cd "$ROOT" && cargo build --release --quiet)
  MULTIARCH=$ROOT/target/release/multiarch
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Best of $RUNS wall-clock runs, in milliseconds.
best_ms() {
  local best=999999999 t0 t1 ms
  for _ in $(seq "$RUNS"); do
    t0=$(date +%s%N)
    "$@" >/dev/null
    t1=$(date +%s%N)
    ms=$(( (t1 - t0) / 1000000 ))
    (( ms < best )) && best=$ms
  done
  echo "$best"
}

printf '%-8s %10s %10s %10s %12s\n' images check_ms plan_ms plan/check us/image
for n in $SIZES; do
  dir=$WORK/p$n
  mkdir -p "$dir"
  {
    printf '[project]\nname = "bench"\n\n[defaults]\nplatforms = ["linux/amd64", "linux/arm64"]\n'
    printf 'registries = ["a", "b"]\ntags = ["{{ version }}", "{{ major }}.{{ minor }}", "latest"]\n\n'
    printf '[registries.a]\nhost = "ghcr.io"\nnamespace = "bench"\n\n[registries.b]\nhost = "registry.example.com"\nnamespace = "bench"\n'
    for i in $(seq "$n"); do
      mkdir -p "$dir/img$i"
      echo "FROM scratch" > "$dir/img$i/Dockerfile"
      printf '\n[images.img%d]\ncontext = "img%d"\n' "$i" "$i"
      # every tenth image builds on the one before it
      if (( i % 10 == 0 )); then printf 'depends-on = ["img%d"]\n' $((i - 1)); fi
    done
  } > "$dir/multiarch.toml"
  check=$(best_ms "$MULTIARCH" -f "$dir/multiarch.toml" check)
  plan=$(best_ms "$MULTIARCH" -f "$dir/multiarch.toml" plan --version 1.2.3 --format json)
  steps=$("$MULTIARCH" -f "$dir/multiarch.toml" plan --version 1.2.3 --format json | grep -c '"phase"')
  printf '%-8s %10s %10s %10s %12s   (%s steps)\n' "$n" "$check" "$plan" \
    "$(awk -v a="$plan" -v b="$check" 'BEGIN { printf "%.2f", (b ? a / b : 0) }')" \
    "$(awk -v a="$plan" -v n="$n" 'BEGIN { printf "%.0f", a * 1000 / n }')" "$steps"
done
