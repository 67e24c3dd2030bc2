# shellcheck shell=bash
# shellcheck disable=SC2034  # constants used by the scripts that source this
# Shared settings and helpers for lab/up.sh, lab/down.sh, lab/status.sh.
# Sourced, not executed.

LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$LAB_DIR/.." && pwd)"
STATE_DIR="$REPO_ROOT/.lab"                  # key, known_hosts, lab.json (gitignored)

LAB_RUN=/run/phoenix-lab                     # socket, pidfile, exec-root
LAB_VAR=/var/lib/phoenix-lab                 # daemon config, wrapper, log, data-root
LAB_CACHE=/var/cache/phoenix-lab             # step-ca binary, build caches
DATA_ROOT="$LAB_VAR/docker"
SOCK="$LAB_RUN/docker.sock"
PIDFILE="$LAB_RUN/docker.pid"
DAEMON_JSON="$LAB_VAR/daemon.json"
DOCKERD_LOG="$LAB_VAR/dockerd.log"
WRAPPER="$LAB_VAR/bin/runc-wrapper"
STEPCA_BIN="$LAB_CACHE/step-ca"

NET_NAME=phoenix-lab
NET_SUBNET=192.168.201.0/24
NET_GATEWAY=192.168.201.1
NET_BRIDGE=phxlab0
LAB_LABEL=phoenix-lab                        # label on every container/volume/network

# name ip image   (order = start order; lxc103 is the CA and boots first)
GUESTS=(
  "lxc103 192.168.201.10 lab/base"
  "lxc101 192.168.201.153 lab/base"
  "lxc102 192.168.201.12 lab/base"
  "vm1001 192.168.201.111 lab/vm"
  "vm1002 192.168.201.102 lab/vm"
)
STANDINS=(
  "traefik   80 443 8080"
  "portainer 9000 9443 8000"
  "qdrant    6333 6334"
)

# Debian's docker CLI (matches the 20.10 daemon), always against the lab's socket.
# Never the system docker: no reliance on DOCKER_HOST / contexts.
DOCKER_BIN=/usr/bin/docker
ldocker() { DOCKER_CONFIG="$LAB_VAR/cli" "$DOCKER_BIN" -H "unix://$SOCK" "$@"; }

_t0=$SECONDS
log()  { printf '[lab %3ds] %s\n' "$((SECONDS - _t0))" "$*" >&2; }
warn() { printf '[lab %3ds] WARNING: %s\n' "$((SECONDS - _t0))" "$*" >&2; }
die()  { printf '[lab %3ds] ERROR: %s\n' "$((SECONDS - _t0))" "$*" >&2; exit 1; }

# One lab:up / lab:down at a time (e.g. a test suite's lab:up racing a manual one).
# fd 9 must not leak into long-lived children (dockerd, background builds): 9>&-.
LOCKFILE=/run/lock/phoenix-lab.lock
lab_lock() {
  mkdir -p "$(dirname "$LOCKFILE")"
  exec 9>"$LOCKFILE"
  if ! flock -n 9; then
    log "another lab:up/lab:down is running; waiting for it (up to 10 min)"
    flock -w 600 9 || die "timed out waiting for $LOCKFILE"
  fi
}

need_root() { [[ $EUID -eq 0 ]] || die "must run as root (it runs its own dockerd)"; }

dockerd_up() { [[ -S "$SOCK" ]] && ldocker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

dockerd_pid() {
  local pid
  [[ -f "$PIDFILE" ]] || return 1
  pid="$(cat "$PIDFILE" 2>/dev/null)" || return 1
  [[ -n "$pid" && -d "/proc/$pid" ]] || return 1
  grep -q dockerd "/proc/$pid/comm" 2>/dev/null || return 1
  # A killed dockerd can linger as a zombie until PID 1 reaps it (e.g. after a session's
  # processes were killed): that is not a running daemon.
  [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]] || return 1
  echo "$pid"
}

ssh_opts() {
  printf '%s\n' -i "$STATE_DIR/id_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes \
    -o UserKnownHostsFile="$STATE_DIR/known_hosts" -o StrictHostKeyChecking=yes \
    -o ConnectTimeout=3 -o LogLevel=ERROR
}
