#!/usr/bin/env bash
# bench/verify.sh — `multiarch verify` over 40 tags on the local registry, against a loop of
# `skopeo inspect --raw` over the same tags, in the same run.
#
# Needs scripts/setup-test-env.sh (registry on 127.0.0.1:5000, dockerd, skopeo, busybox).
# Builds the release binary once (cargo build --release), then:
#   1. builds a two-platform busybox image (FROM scratch) and pushes it as an index;
#   2. writes 40 tags of it with `multiarch copy` (same repository: nothing is uploaded);
#   3. times `multiarch verify` (all 40 tags: index, both platform manifests and configs) and
#      `skopeo inspect --raw` once per tag (the index only), best of $RUNS runs each.
# Prints both times and the ratio; the issue's aim is verify <= 1/5 of the skopeo loop.
#
# Knobs: TAGS=40 RUNS=3 MULTIARCH=path/to/binary (skips the release build)
set -Eeuo pipefail

TAGS=${TAGS:-40}
RUNS=${RUNS:-3}
REG=127.0.0.1:5000
DOCKER=/usr/bin/docker
ROOT=$(cd "$(dirname "$0")/.." && pwd)

command -v skopeo >/dev/null || { echo "bench: skopeo is missing (run scripts/setup-test-env.sh)" >&2; exit 2; }
curl -fsS "http://$REG/v2/" >/dev/null || { echo "bench: no registry on $REG (run scripts/setup-test-env.sh)" >&2; exit 2; }

if [[ -z "${MULTIARCH:-}" ]]; then
  (cd "$ROOT" && cargo build --release --quiet)
  MULTIARCH=$ROOT/target/release/multiarch
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export DOCKER_CONFIG=$WORK/docker-config DOCKER_BUILDKIT=1
REPO=bench/verify-$$-$(date +%s)

# 1. A two-platform index.
images=()
for arch in amd64 arm64; do
  mkdir -p "$WORK/ctx-$arch"
  cp "/var/lib/multiarch-test/busybox/$arch/busybox" "$WORK/ctx-$arch/busybox"
  printf 'FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT ["/bin/busybox"]\n' > "$WORK/ctx-$arch/Dockerfile"
  $DOCKER build -q --network none --platform "linux/$arch" -t "$REG/$REPO:$arch" "$WORK/ctx-$arch" >/dev/null
  $DOCKER push -q "$REG/$REPO:$arch" >/dev/null
  images+=("$REG/$REPO:$arch")
done
$DOCKER manifest create --insecure "$REG/$REPO:t1" "${images[@]}" >/dev/null
$DOCKER manifest push --insecure "$REG/$REPO:t1" >/dev/null

# 2. 40 tags of it, and a project declaring them.
tags=()
for i in $(seq 1 "$TAGS"); do tags+=("t$i"); done
for t in "${tags[@]:1}"; do "$MULTIARCH" copy "$REG/$REPO:t1" "$REG/$REPO:$t" >/dev/null 2>&1; done
{
  printf '[project]\nname = "bench"\n[release]\nversion-from = "1.0.0"\n'
  printf '[registries.local]\nhost = "%s"\n' "$REG"
  printf '[images.app]\ncontext = "."\nrepository = "%s"\n' "$REPO"
  printf 'platforms = ["linux/amd64", "linux/arm64"]\nregistries = ["local"]\ntags = ['
  printf '"%s", ' "${tags[@]}" | sed 's/, $//'
  printf ']\n'
} > "$WORK/multiarch.toml"
printf 'FROM scratch\n' > "$WORK/Dockerfile"
(cd "$WORK" && "$MULTIARCH" verify >/dev/null) || { echo "bench: verify failed on the bench image" >&2; exit 1; }

now() { date +%s.%N; }
best() { sort -n | head -1; }

# 3. Timings, best of RUNS.
verify_times=()
skopeo_times=()
for _ in $(seq 1 "$RUNS"); do
  s=$(now); (cd "$WORK" && "$MULTIARCH" verify >/dev/null); e=$(now)
  verify_times+=("$(echo "$e - $s" | bc -l)")
  s=$(now)
  for t in "${tags[@]}"; do skopeo inspect --raw --tls-verify=false "docker://$REG/$REPO:$t" >/dev/null; done
  e=$(now)
  skopeo_times+=("$(echo "$e - $s" | bc -l)")
done
v=$(printf '%s\n' "${verify_times[@]}" | best)
k=$(printf '%s\n' "${skopeo_times[@]}" | best)
s=$(now); (cd "$WORK" && "$MULTIARCH" verify --deep >/dev/null); e=$(now)
d=$(echo "$e - $s" | bc -l)

printf 'tags: %d (one two-platform index), best of %d runs\n' "$TAGS" "$RUNS"
printf 'multiarch verify:            %6.3f s  (index + 2 manifests + 2 configs per tag)\n' "$v"
printf 'multiarch verify --deep:     %6.3f s  (once)\n' "$d"
printf 'skopeo inspect --raw loop:   %6.3f s  (index only)\n' "$k"
printf 'ratio verify / skopeo:       %6.3f  (aim: <= 0.200)\n' "$(echo "$v / $k" | bc -l)"
