#!/usr/bin/env bash
# Build a real step-ca binary offline from Debian's Go sources (GOPATH mode).
#   lab/stepca/build.sh [--check] [OUT]      default OUT=/var/cache/phoenix-lab/step-ca
# Writes OUT, OUT.sha256 (of the binary) and OUT.src (hash of what it was built from).
# Idempotent: rebuilds only when OUT is missing or main.go / BUILD_REV changed
# (content, not mtimes: a fresh clone must not rebuild). --check: exit 0 when the
# cached binary is current, 3 when a build is needed; builds nothing.
# Needs root (apt-get install of the Go toolchain).
set -euo pipefail

BUILD_REV=1   # bump when the build command changes
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CHECK=0
if [[ "${1:-}" == --check ]]; then CHECK=1; shift; fi
OUT="${1:-/var/cache/phoenix-lab/step-ca}"
PKGS=(golang-go golang-github-smallstep-certificates-dev gcc libc6-dev libzstd-dev)

log() { printf '[stepca] %s\n' "$*" >&2; }

SRC_HASH="$( { echo "rev $BUILD_REV"; cat "$HERE/main.go"; } | sha256sum | cut -d' ' -f1)"
if [[ -x "$OUT" && -s "$OUT.sha256" && "$(cat "$OUT.src" 2>/dev/null)" == "$SRC_HASH" ]]; then
  ((CHECK)) || log "cached: $OUT"
  exit 0
fi
((CHECK)) && exit 3

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt_log="$(mktemp)"
  if ! apt-get install -y -q -o DPkg::Lock::Timeout=300 "${missing[@]}" >"$apt_log" 2>&1; then
    # package lists may be missing on a fresh machine
    apt-get update -q -o DPkg::Lock::Timeout=300 >>"$apt_log" 2>&1 || true
    apt-get install -y -q -o DPkg::Lock::Timeout=300 "${missing[@]}" >>"$apt_log" 2>&1 \
      || { cat "$apt_log" >&2; rm -f "$apt_log"; log "ERROR: apt-get install failed"; exit 1; }
  fi
  rm -f "$apt_log"
fi

mkdir -p "$(dirname "$OUT")"
work="$(mktemp -d /tmp/phoenix-stepca.XXXXXX)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src/phoenix-lab/step-ca"
cp "$HERE/main.go" "$work/src/phoenix-lab/step-ca/main.go"

log "building (GOPATH mode, offline)"
start=$SECONDS
(
  cd "$work/src/phoenix-lab/step-ca"
  GO111MODULE=off GOFLAGS='' GOPROXY=off GOPATH="$work:/usr/share/gocode" \
  GOCACHE="$(dirname "$OUT")/go-build-cache" CGO_ENABLED=1 \
    go build -trimpath -o "$work/step-ca" . >"$work/build.log" 2>&1
) || { cat "$work/build.log" >&2; log "ERROR: go build failed (output above)"; exit 1; }
log "built in $((SECONDS - start))s"

if ! "$work/step-ca" version >"$work/version.txt" 2>&1; then
  cat "$work/version.txt" >&2
  log "ERROR: the built binary does not run"
  exit 1
fi
log "$(head -1 "$work/version.txt")"

install -m 0755 "$work/step-ca" "$OUT.tmp"
mv -f "$OUT.tmp" "$OUT"
sha256sum "$OUT" | cut -d' ' -f1 >"$OUT.sha256"
echo "$SRC_HASH" >"$OUT.src"
log "ok: $OUT sha256=$(cat "$OUT.sha256")"
