#!/usr/bin/env bash
# bench/release.sh — a real release of N independent two-platform images (docker backend, the
# local registry on 127.0.0.1:5000, arm64 under QEMU), three ways in the same run:
#   1. multiarch apply --jobs 1        (one step at a time)
#   2. multiarch apply                 (default: one job per CPU)
#   3. the script of `multiarch plan --format shell`, run by bash (sequential, like a hand-written one)
# Each run gets a fresh build argument, so no run is served from an earlier run's cache.
# Prints the wall-clock times and the ratios against (2).
#
# Needs scripts/setup-test-env.sh. Knobs: IMAGES=4 MULTIARCH=path/to/binary
set -Eeuo pipefail

IMAGES=${IMAGES:-4}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUSYBOX=/var/lib/multiarch-test/busybox
export MULTIARCH_DOCKER=/usr/bin/docker DOCKER_BUILDKIT=1
curl -fsS http://127.0.0.1:5000/v2/ >/dev/null || { echo "bench: no registry on 127.0.0.1:5000 (run scripts/setup-test-env.sh)" >&2; exit 2; }
[[ -x $BUSYBOX/arm64/busybox ]] || { echo "bench: no busybox (run scripts/setup-test-env.sh)" >&2; exit 2; }
if [[ -z "${MULTIARCH:-}" ]]; then
  (cd "$ROOT" && cargo build --release --quiet)
  MULTIARCH=$ROOT/target/release/multiarch
fi
export MULTIARCH

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
stamp=$(date +%s)

project() { # $1 = run id
  local dir=$WORK/$1
  mkdir -p "$dir"
  {
    printf '[project]\nname = "bench"\n\n[defaults]\nplatforms = ["linux/amd64", "linux/arm64"]\n'
    printf 'registries = ["local"]\ntags = ["{{ version }}", "latest"]\nnetwork = "none"\n'
    printf 'build-args = { RUN_ID = "%s-%s" }\n\n[registries.local]\nhost = "127.0.0.1:5000"\n' "$stamp" "$1"
    for i in $(seq "$IMAGES"); do
      mkdir -p "$dir/img$i/amd64" "$dir/img$i/arm64"
      cp "$BUSYBOX/amd64/busybox" "$dir/img$i/amd64/"
      cp "$BUSYBOX/arm64/busybox" "$dir/img$i/arm64/"
      cat > "$dir/img$i/Dockerfile" <<'DOCKERFILE'
FROM scratch
ARG TARGETARCH
COPY ${TARGETARCH}/busybox /bin/busybox
ARG RUN_ID
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir -p /etc && for i in 1 2 3 4 5 6 7 8; do /bin/busybox sha256sum /bin/busybox >> /etc/sums; done && echo $RUN_ID > /etc/run-id"]
ENTRYPOINT ["/bin/busybox"]
DOCKERFILE
      printf '\n[images.img%d]\ncontext = "img%d"\nrepository = "multiarch-bench/%s-img%d"\n' "$i" "$i" "$1" "$i"
    done
  } > "$dir/multiarch.toml"
  echo "$dir"
}

# Milliseconds of one run; a failed run stops the benchmark with its log.
ms() {
  local t0 t1 log=$WORK/run-$RANDOM.log
  t0=$(date +%s%N)
  if ! "$@" >"$log" 2>&1; then echo "bench: failed: $*" >&2; tail -20 "$log" >&2; return 1; fi
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000000 ))
}

d1=$(project jobs1);   t1=$(ms "$MULTIARCH" -f "$d1/multiarch.toml" apply --backend docker --version 1.0.0 --jobs 1)
d2=$(project default); t2=$(ms "$MULTIARCH" -f "$d2/multiarch.toml" apply --backend docker --version 1.0.0)
d3=$(project shell)
"$MULTIARCH" -f "$d3/multiarch.toml" plan --backend docker --version 1.0.0 --format shell -o "$d3/release.sh" 2>/dev/null
t3=$(ms bash "$d3/release.sh")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "release of $IMAGES images x 2 platforms on $(nproc) CPUs:"
printf '  %-34s %8s ms  %s\n' "apply --jobs 1" "$t1" "$(ratio "$t1" "$t2")x"
printf '  %-34s %8s ms  %s\n' "apply (default jobs: $(nproc))" "$t2" "1.00x"
printf '  %-34s %8s ms  %s\n' "plan --format shell | bash" "$t3" "$(ratio "$t3" "$t2")x"
