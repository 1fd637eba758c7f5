#!/usr/bin/env bash
# stop-test-env.sh — stop what scripts/setup-test-env.sh started: the two
# registries and dockerd (and the containerd that dockerd manages), using the
# pidfiles under /var/run/multiarch-test/. Data under /var/lib/multiarch-test,
# /var/lib/docker and /var/lib/containers is kept. Safe to run twice.
#   --purge   also delete the registries' storage (/var/lib/multiarch-test/registry-*)
set -uo pipefail

RUN_DIR=/var/run/multiarch-test
STATE_DIR=/var/lib/multiarch-test
rc=0

[ "$(id -u)" = 0 ] || { echo "stop-test-env: must run as root" >&2; exit 1; }

stop_pidfile() { # NAME PIDFILE
  local name=$1 pidf=$2 pid
  if [ ! -s "$pidf" ]; then echo "stop-test-env: $name: no pidfile, not running"; return 0; fi
  pid=$(cat "$pidf")
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "stop-test-env: $name: pid $pid not running"; rm -f "$pidf"; return 0
  fi
  kill -TERM "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "stop-test-env: $name: pid $pid ignored SIGTERM for 30s, sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null; sleep 1
  fi
  if kill -0 "$pid" 2>/dev/null; then
    echo "stop-test-env: $name: pid $pid is still running" >&2; rc=1
  else
    echo "stop-test-env: $name stopped (pid $pid)"; rm -f "$pidf"
  fi
}

stop_pidfile registry-open "$RUN_DIR/registry-open.pid"
stop_pidfile registry-auth "$RUN_DIR/registry-auth.pid"
# dockerd stops its running containers and its managed containerd on SIGTERM.
stop_pidfile dockerd "$RUN_DIR/dockerd.pid"

if [ "${1:-}" = --purge ]; then
  rm -rf "$STATE_DIR/registry-open" "$STATE_DIR/registry-auth"
  echo "stop-test-env: registry storage purged"
fi
exit $rc
