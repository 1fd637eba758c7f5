#!/usr/bin/env bash
# setup-test-env.sh — install and start the real components used by the
# end-to-end tests of `multiarch`, on loopback only.
#
# Run as root on Debian 12 (bookworm), no systemd needed. Needs only the Debian
# archive. Idempotent: a second run reuses what is installed and running.
#
# What it sets up:
#   * docker.io 20.10 engine, started in the background (setsid, no systemd) on
#     the unix socket /var/run/docker.sock only (no TCP), overlay2,
#     iptables/ip-forward/ip-masq off, BuildKit on by default, insecure-registries
#     127.0.0.1:5000/5001 and localhost:5000/5001 (/etc/docker/daemon.json).
#     Network (MULTIARCH_DOCKER_NETWORK):
#       none   (default) --bridge=none: no docker0, no private-range address.
#              BuildKit RUN steps then fail with "network bridge not found"
#              unless `docker build` gets `--network none` (or `--network host`).
#       bridge docker0 = 172.31.254.1/24 with iptables FORWARD DROP in and out
#              of docker0 (the host has ip_forward=1): plain `docker build`
#              works without --network.
#     Log: /var/log/multiarch-test/dockerd.log
#   * two reference registries (docker-registry 2.8):
#       127.0.0.1:5000  open,  storage /var/lib/multiarch-test/registry-open
#       127.0.0.1:5001  htpasswd (bcrypt) user `multiarch`, password
#                       `multiarch-secret-pw`, storage .../registry-auth
#     both with delete enabled. Logs under /var/log/multiarch-test/.
#   * qemu-user-static binfmt handlers (flags F: usable inside containers).
#   * static busybox: /var/lib/multiarch-test/busybox/{amd64,arm64}/busybox
#   * podman 4.3 / buildah / skopeo: registries.conf.d marks the loopback
#     registries insecure (plain HTTP); containers.conf: netns=host,
#     cgroupfs, events_logger=file, runtime=runc (crun refuses hybrid cgroups),
#     default_ulimits lowered (no CAP_SYS_RESOURCE here); storage.conf: overlay.
#
# What callers (tests) must still do:
#   docker : use /usr/bin/docker, NOT /usr/local/bin/docker (a different client
#            without buildx that refuses BuildKit builds). Export
#            DOCKER_BUILDKIT=1 (DOCKER_BUILDKIT=0 = legacy builder, no
#            TARGETARCH). With the default network mode pass `--network none`
#            to `docker build` when the Dockerfile has RUN steps.
#            `docker manifest create --insecure` and `docker manifest push
#            --insecure` for the plain-HTTP registries (without --insecure,
#            create fails "No such manifest"); no DOCKER_CLI_EXPERIMENTAL needed.
#            Re-creating an existing local list needs --amend or `manifest rm`.
#            No `docker buildx`; `--platform a,b` is rejected by this engine.
#            `docker login 127.0.0.1:5001 -u multiarch --password-stdin`.
#   podman : no extra flags. Do not pull a pushed list back into the same
#            storage and then push the local list again (podman 4.3 bug:
#            "reading manifest for instance ... file does not exist").
#   skopeo : no flag needed for the loopback registries (registries.conf);
#            `--tls-verify=false` is harmless. podman/skopeo also read
#            ~/.docker/config.json credentials.
#
# Environment knobs:
#   MULTIARCH_DOCKER_NETWORK=none|bridge   see above (default none)
#   MULTIARCH_SETUP_SKIP_SMOKE=1   skip the docker/podman smoke builds at the end
#   MULTIARCH_SETUP_WAIT=60        seconds to wait for each service
#
# Stop everything with scripts/stop-test-env.sh (pidfiles in /var/run/multiarch-test/).

set -Eeuo pipefail

STATE_DIR=/var/lib/multiarch-test
RUN_DIR=/var/run/multiarch-test
LOG_DIR=/var/log/multiarch-test
CONF_DIR=/etc/multiarch-test
DOCKER=/usr/bin/docker
WAIT_SECS=${MULTIARCH_SETUP_WAIT:-60}
DOCKER_NET=${MULTIARCH_DOCKER_NETWORK:-none}
REG_USER=multiarch
REG_PASS=multiarch-secret-pw
MARKER="# managed by multiarch scripts/setup-test-env.sh"

PACKAGES=(
  docker.io containerd runc tini iptables
  docker-registry apache2-utils
  qemu-user-static
  podman buildah skopeo crun conmon uidmap fuse-overlayfs netavark aardvark-dns
  slirp4netns catatonit golang-github-containers-common
  curl jq ca-certificates file
)

START_TS=$(date +%s)
log()  { printf '[setup-test-env %3ss] %s\n' "$(( $(date +%s) - START_TS ))" "$*"; }
die()  { printf '[setup-test-env] ERROR: %s\n' "$*" >&2; exit 1; }
trap 'rc=$?; printf "[setup-test-env] ERROR: command failed (exit %s) at line %s: %s\n" "$rc" "$LINENO" "$BASH_COMMAND" >&2; exit $rc' ERR

[ "$(id -u)" = 0 ] || die "must run as root"
[ -r /etc/debian_version ] || die "this script targets Debian 12"

mkdir -p "$STATE_DIR" "$RUN_DIR" "$LOG_DIR" "$CONF_DIR"

# pid_alive PIDFILE -> 0 when the pidfile names a running process
pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# wait_for DESC CMD... -> polls CMD until it succeeds or WAIT_SECS elapse
wait_for() {
  local desc=$1; shift
  local deadline=$(( $(date +%s) + WAIT_SECS ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      return 1
    fi
    sleep 0.5
  done
}

# write_if_changed FILE (content on stdin) -> returns 0 if the file changed
write_if_changed() {
  local f=$1 tmp
  tmp=$(mktemp)
  cat > "$tmp"
  if [ -f "$f" ] && cmp -s "$tmp" "$f"; then rm -f "$tmp"; return 1; fi
  mkdir -p "$(dirname "$f")"
  mv "$tmp" "$f"; chmod 0644 "$f"
  return 0
}

# ---------------------------------------------------------------- 1. packages
BB_DIR=$STATE_DIR/busybox
need_apt=0
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || { need_apt=1; break; }
done
[ -x "$BB_DIR/amd64/busybox" ] && [ -x "$BB_DIR/arm64/busybox" ] || need_apt=1

if [ "$need_apt" = 1 ]; then
  export DEBIAN_FRONTEND=noninteractive
  # arm64 lists are needed for busybox-static:arm64; add before the one update.
  dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
  # Never let package postinst scripts start docker/registry services with
  # their default (all-interfaces) configs.
  created_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; created_policy=1
  fi
  log "apt-get update"
  apt-get update -q >"$LOG_DIR/apt-update.log" 2>&1 || { tail -20 "$LOG_DIR/apt-update.log" >&2; die "apt-get update failed"; }
  log "apt-get install ${#PACKAGES[@]} packages"
  apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" >"$LOG_DIR/apt-install.log" 2>&1 \
    || { tail -30 "$LOG_DIR/apt-install.log" >&2; die "apt-get install failed (log: $LOG_DIR/apt-install.log)"; }
  [ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d

  # ------------------------------------------------------------ 5. busybox
  log "fetching busybox-static for amd64 and arm64"
  dl=$(mktemp -d); chmod 0755 "$dl"; chown _apt "$dl" 2>/dev/null || true
  ( cd "$dl" && apt-get download busybox-static:amd64 busybox-static:arm64 ) >"$LOG_DIR/busybox-download.log" 2>&1 \
    || { cat "$LOG_DIR/busybox-download.log" >&2; die "apt-get download busybox-static failed"; }
  for arch in amd64 arm64; do
    deb=$(ls "$dl"/busybox-static_*_"$arch".deb)
    mkdir -p "$dl/x-$arch" "$BB_DIR/$arch"
    dpkg-deb -x "$deb" "$dl/x-$arch"
    install -m 0755 "$dl/x-$arch/bin/busybox" "$BB_DIR/$arch/busybox"
  done
  rm -rf "$dl"
else
  log "packages and busybox already installed, skipping apt"
fi
file -b "$BB_DIR/amd64/busybox" | grep -q 'x86-64.*statically linked' || die "bad amd64 busybox"
file -b "$BB_DIR/arm64/busybox" | grep -q 'aarch64.*statically linked' || die "bad arm64 busybox"

# ------------------------------------------------------------ 4. binfmt / qemu
if ! mountpoint -q /proc/sys/fs/binfmt_misc; then
  log "mounting binfmt_misc"
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || die "cannot mount binfmt_misc"
fi
echo 1 > /proc/sys/fs/binfmt_misc/status
registered=0
for conf in /usr/lib/binfmt.d/qemu-*.conf; do
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in ''|'#'*|';'*) continue ;; esac
    name=$(printf '%s' "$line" | cut -d: -f2)
    [ -e "/proc/sys/fs/binfmt_misc/$name" ] && continue
    printf '%s' "$line" > /proc/sys/fs/binfmt_misc/register || die "cannot register binfmt $name"
    registered=$((registered + 1))
  done < "$conf"
done
log "binfmt: registered $registered new qemu handler(s)"
grep -q '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 || die "qemu-aarch64 binfmt handler lacks the F flag"
[ "$("$BB_DIR/arm64/busybox" uname -m)" = aarch64 ] || die "arm64 busybox does not run under qemu"

# ------------------------------------------------------------------- 2. dockerd
case "$DOCKER_NET" in
  none)   net_json='"bridge": "none",' ;;
  bridge) net_json='"bip": "172.31.254.1/24",' ;;
  *) die "MULTIARCH_DOCKER_NETWORK must be 'none' or 'bridge', not '$DOCKER_NET'" ;;
esac
daemon_changed=0
write_if_changed /etc/docker/daemon.json <<EOF && daemon_changed=1 || true
{
  "hosts": ["unix:///var/run/docker.sock"],
  "insecure-registries": ["127.0.0.1:5000", "127.0.0.1:5001", "localhost:5000", "localhost:5001"],
  "iptables": false,
  "ip6tables": false,
  "ip-forward": false,
  "ip-masq": false,
  $net_json
  "storage-driver": "overlay2",
  "features": { "buildkit": true }
}
EOF

docker_ok() { "$DOCKER" info >/dev/null 2>&1; }
if pid_alive "$RUN_DIR/dockerd.pid" && [ "$daemon_changed" = 1 ]; then
  log "daemon.json changed: restarting dockerd"
  kill "$(cat "$RUN_DIR/dockerd.pid")"
  for _ in $(seq 1 60); do pid_alive "$RUN_DIR/dockerd.pid" || break; sleep 0.5; done
fi
if pid_alive "$RUN_DIR/dockerd.pid" && docker_ok; then
  log "dockerd already running (pid $(cat "$RUN_DIR/dockerd.pid"))"
elif docker_ok; then
  log "WARNING: a dockerd not started by this script answers on /var/run/docker.sock; reusing it"
else
  if [ "$DOCKER_NET" = bridge ]; then
    # The host may have ip_forward=1: never let container traffic leave docker0.
    for dir in -i -o; do
      iptables -C FORWARD "$dir" docker0 -j DROP 2>/dev/null || iptables -I FORWARD "$dir" docker0 -j DROP \
        || die "cannot add iptables FORWARD DROP rules for docker0 (bridge mode)"
    done
  elif ip link show docker0 >/dev/null 2>&1; then
    ip link del docker0 || true   # left over from an earlier bridge-mode run
  fi
  # stale socket/pidfiles from a killed daemon would make dockerd refuse to start
  rm -f /var/run/docker.pid "$RUN_DIR/dockerd.pid"
  log "starting dockerd (log $LOG_DIR/dockerd.log)"
  setsid dockerd --pidfile "$RUN_DIR/dockerd.pid" >>"$LOG_DIR/dockerd.log" 2>&1 < /dev/null &
  if ! wait_for "dockerd" docker_ok; then
    tail -30 "$LOG_DIR/dockerd.log" >&2
    die "dockerd did not answer within ${WAIT_SECS}s (log: $LOG_DIR/dockerd.log)"
  fi
fi
docker_info=$("$DOCKER" info 2>/dev/null || true)
grep -q '127.0.0.1:5001' <<<"$docker_info" || die "dockerd is not configured with insecure registry 127.0.0.1:5001 (foreign daemon?)"

# --------------------------------------------------------------- 3. registries
htpasswd -Bbn "$REG_USER" "$REG_PASS" > "$CONF_DIR/htpasswd.new"
if [ -f "$CONF_DIR/htpasswd" ] && htpasswd -vb "$CONF_DIR/htpasswd" "$REG_USER" "$REG_PASS" >/dev/null 2>&1; then
  rm -f "$CONF_DIR/htpasswd.new"
else
  mv "$CONF_DIR/htpasswd.new" "$CONF_DIR/htpasswd"
fi
chmod 0644 "$CONF_DIR/htpasswd"

registry_config() { # NAME PORT AUTH(0|1)
  cat <<EOF
$MARKER
version: 0.1
log:
  level: info
  fields:
    service: registry-$1
storage:
  filesystem:
    rootdirectory: $STATE_DIR/registry-$1
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$2
  secret: multiarch-test-$1
  headers:
    X-Content-Type-Options: [nosniff]
EOF
  if [ "$3" = 1 ]; then
    cat <<EOF
auth:
  htpasswd:
    realm: multiarch-test
    path: $CONF_DIR/htpasswd
EOF
  fi
}

http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true; }

start_registry() { # NAME PORT AUTH EXPECTED_CODE
  local name=$1 port=$2 auth=$3 want=$4 cfg=$CONF_DIR/registry-$1.yml pidf=$RUN_DIR/registry-$1.pid changed=0
  mkdir -p "$STATE_DIR/registry-$name"
  registry_config "$name" "$port" "$auth" | write_if_changed "$cfg" && changed=1 || true
  if pid_alive "$pidf" && [ "$changed" = 1 ]; then
    kill "$(cat "$pidf")"; sleep 1
  fi
  if pid_alive "$pidf" && [ "$(http_code "http://127.0.0.1:$port/v2/")" = "$want" ]; then
    log "registry-$name already running on 127.0.0.1:$port"
    return 0
  fi
  if [ "$(http_code "http://127.0.0.1:$port/v2/")" != 000 ]; then
    die "port 127.0.0.1:$port is already in use by a process not started by this script"
  fi
  log "starting registry-$name on 127.0.0.1:$port (log $LOG_DIR/registry-$name.log)"
  setsid /usr/bin/docker-registry serve "$cfg" >>"$LOG_DIR/registry-$name.log" 2>&1 < /dev/null &
  echo $! > "$pidf"
  if ! wait_for "registry-$name" bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://127.0.0.1:$port/v2/)\" = $want ]"; then
    tail -20 "$LOG_DIR/registry-$name.log" >&2
    die "registry-$name did not answer $want on http://127.0.0.1:$port/v2/ within ${WAIT_SECS}s"
  fi
}
start_registry open 5000 0 200
start_registry auth 5001 1 401
[ "$(curl -s -o /dev/null -w '%{http_code}' -u "$REG_USER:$REG_PASS" http://127.0.0.1:5001/v2/)" = 200 ] \
  || die "registry-auth rejects the test credentials"

# ------------------------------------------------------------------- 6. podman
write_if_changed /etc/containers/registries.conf.d/multiarch-test.conf <<EOF || true
$MARKER
[[registry]]
location = "127.0.0.1:5000"
insecure = true

[[registry]]
location = "127.0.0.1:5001"
insecure = true

[[registry]]
location = "localhost:5000"
insecure = true

[[registry]]
location = "localhost:5001"
insecure = true
EOF

# containers.conf / storage.conf: only written when absent or ours.
owned_or_absent() { [ ! -e "$1" ] || head -1 "$1" | grep -qF "$MARKER"; }
# The sandbox lacks CAP_SYS_RESOURCE: podman's default (raise RLIMIT_NOFILE to
# 1048576, nproc likewise) fails: "error setting rlimit type 7: operation not permitted".
nofile=$(ulimit -Hn); case "$nofile" in unlimited|*[!0-9]*) nofile=4096 ;; esac
[ "$nofile" -gt 4096 ] && nofile=4096
# likewise RLIMIT_NPROC ("rlimit type 6"); podman itself runs conmon with nproc
# 32768 here, so the container may not ask for more than that.
nproc=$(ulimit -Hu); case "$nproc" in unlimited|*[!0-9]*) nproc=32768 ;; esac
[ "$nproc" -gt 32768 ] && nproc=32768
if owned_or_absent /etc/containers/containers.conf; then
  write_if_changed /etc/containers/containers.conf <<EOF || true
$MARKER
# No systemd and no journald here; no bridge networking on loopback-only hosts.
[containers]
netns = "host"
log_driver = "k8s-file"
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"
EOF
else
  log "WARNING: /etc/containers/containers.conf exists and is not ours; leaving it"
fi
if owned_or_absent /etc/containers/storage.conf; then
  write_if_changed /etc/containers/storage.conf <<EOF || true
$MARKER
[storage]
driver = "overlay"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
EOF
else
  log "WARNING: /etc/containers/storage.conf exists and is not ours; leaving it"
fi

# ------------------------------------------------------------- smoke tests
if [ "${MULTIARCH_SETUP_SKIP_SMOKE:-0}" != 1 ]; then
  ctx=$(mktemp -d /tmp/multiarch-setup-smoke.XXXXXX)
  trap 'rm -rf "$ctx"' EXIT
  for arch in amd64 arm64; do mkdir -p "$ctx/$arch"; cp "$BB_DIR/$arch/busybox" "$ctx/$arch/busybox"; done
  cat > "$ctx/Dockerfile" <<'EOF'
FROM scratch
ARG TARGETARCH
COPY ${TARGETARCH}/busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir -p /out && /bin/busybox uname -m > /out/arch"]
ENTRYPOINT ["/bin/busybox"]
CMD ["cat", "/out/arch"]
EOF
  log "smoke: docker build --platform linux/arm64 (BuildKit)"
  net_flag=(); [ "$DOCKER_NET" = none ] && net_flag=(--network none)
  DOCKER_BUILDKIT=1 "$DOCKER" build -q "${net_flag[@]}" --platform linux/arm64 -t multiarch-setup-smoke:arm64 "$ctx" >"$LOG_DIR/smoke-docker.log" 2>&1 \
    || { tail -30 "$LOG_DIR/smoke-docker.log" >&2; die "docker BuildKit build for linux/arm64 failed"; }
  out=$("$DOCKER" run --rm --platform linux/arm64 multiarch-setup-smoke:arm64 2>>"$LOG_DIR/smoke-docker.log")
  [ "$out" = aarch64 ] || die "docker arm64 image RUN step saw '$out', expected aarch64"
  "$DOCKER" rmi -f multiarch-setup-smoke:arm64 >/dev/null 2>&1 || true

  # podman 4.3 cannot even list its images once a local manifest list points at a missing
  # instance (a list lacking the host's platform, or whose images were removed). The storage
  # only ever holds test images here: reset it rather than fail every later podman command.
  if ! podman images >/dev/null 2>&1; then
    log "podman storage is damaged (podman 4.3 manifest-list bug): podman system reset"
    podman system reset --force >/dev/null 2>&1 || die "podman system reset failed"
  fi
  log "smoke: podman build --platform linux/amd64,linux/arm64 --manifest + manifest push --all"
  smoke_ref=127.0.0.1:5000/multiarch-setup-smoke/podman:latest
  podman manifest rm localhost/multiarch-setup-smoke:latest >/dev/null 2>&1 || true
  {
    podman build --label multiarch-setup-smoke=1 --platform linux/amd64,linux/arm64 \
      --manifest localhost/multiarch-setup-smoke:latest "$ctx" &&
    podman manifest push --all localhost/multiarch-setup-smoke:latest "docker://$smoke_ref"
  } >"$LOG_DIR/smoke-podman.log" 2>&1 || { tail -30 "$LOG_DIR/smoke-podman.log" >&2; die "podman multi-arch build/push failed"; }
  plats=$(skopeo inspect --raw --tls-verify=false "docker://$smoke_ref" | jq -r '[.manifests[].platform.architecture] | sort | join(",")')
  [ "$plats" = amd64,arm64 ] || die "podman-pushed manifest list has platforms '$plats', expected amd64,arm64"
  out=$(podman run --rm --platform linux/arm64 localhost/multiarch-setup-smoke:latest 2>>"$LOG_DIR/smoke-podman.log") \
    || { tail -10 "$LOG_DIR/smoke-podman.log" >&2; die "podman run of the arm64 image failed"; }
  [ "$out" = aarch64 ] || die "podman arm64 image RUN step saw '$out', expected aarch64"
  skopeo delete --tls-verify=false "docker://$smoke_ref" >/dev/null 2>&1 || true
  podman manifest rm localhost/multiarch-setup-smoke:latest >/dev/null 2>&1 || true
  ids=$( (podman images -q --filter label=multiarch-setup-smoke=1 2>/dev/null || true) | sort -u)
  [ -z "$ids" ] || podman rmi -f $ids >/dev/null 2>&1 || true
fi

# ------------------------------------------------------------------- summary
qemu_v=$(qemu-aarch64-static --version | head -1)
cat <<EOF
================ multiarch test environment ready ($(( $(date +%s) - START_TS ))s)
docker (client $DOCKER): $("$DOCKER" version --format '{{.Client.Version}}' 2>/dev/null) / engine $("$DOCKER" version --format '{{.Server.Version}}' 2>/dev/null), storage $("$DOCKER" info --format '{{.Driver}}' 2>/dev/null)
podman : $(podman --version)
buildah: $(buildah --version)
skopeo : $(skopeo --version)
qemu   : $qemu_v
registry: $(/usr/bin/docker-registry --version)
  open  http://127.0.0.1:5000  (pid $(cat "$RUN_DIR/registry-open.pid"))
  auth  http://127.0.0.1:5001  user $REG_USER / $REG_PASS (pid $(cat "$RUN_DIR/registry-auth.pid"))
busybox: $BB_DIR/{amd64,arm64}/busybox
env for tests: DOCKER=$DOCKER DOCKER_BUILDKIT=1
EOF
exit 0
