#!/usr/bin/env bash
# Build traefik-standin (the lab's stand-in for Traefik: see README.md here) offline, from
# Debian's Go toolchain and Go sources (gopkg.in/yaml.v3), static (CGO off).
#   lab/standins/traefik/build.sh [--check] [OUT]   default OUT=/var/cache/phoenix-lab/traefik-standin
# Writes OUT, OUT.sha256 (of the binary) and OUT.src (hash of what it was built from).
# Rebuilds only when OUT is missing or its main.go / BUILD_REV changed. --check: exit 0 when the
# cached binary is current, 3 when a build is needed. Needs root (apt-get of the toolchain).
set -euo pipefail

BUILD_REV=1
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CHECK=0
if [[ "${1:-}" == --check ]]; then CHECK=1; shift; fi
OUT="${1:-/var/cache/phoenix-lab/traefik-standin}"
PKGS=(golang-go golang-gopkg-yaml.v3-dev)

log() { printf '[traefik-standin] %s\n' "$*" >&2; }

SRC_HASH="$( { echo "rev $BUILD_REV"; cat "$HERE/cmd/traefik-standin/main.go"; } | sha256sum | cut -d' ' -f1)"
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
  apt-get install -y -q -o DPkg::Lock::Timeout=300 "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -q -o DPkg::Lock::Timeout=300 >/dev/null 2>&1 || true
         apt-get install -y -q -o DPkg::Lock::Timeout=300 "${missing[@]}" >/dev/null; }
fi

mkdir -p "$(dirname "$OUT")"
work="$(mktemp -d /tmp/phoenix-traefik-standin.XXXXXX)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src/phoenix-lab/traefik-standin"
cp "$HERE/cmd/traefik-standin/main.go" "$work/src/phoenix-lab/traefik-standin/main.go"
(
  cd "$work/src/phoenix-lab/traefik-standin"
  GO111MODULE=off GOFLAGS='' GOPROXY=off GOPATH="$work:/usr/share/gocode" \
  GOCACHE="$(dirname "$OUT")/go-build-cache" CGO_ENABLED=0 \
    go build -trimpath -ldflags='-s -w' -o "$work/traefik-standin" . >"$work/build.log" 2>&1
) || { cat "$work/build.log" >&2; log "ERROR: go build failed (output above)"; exit 1; }
"$work/traefik-standin" version | grep -q traefik-standin || { log "ERROR: the built binary does not run"; exit 1; }

install -m 0755 "$work/traefik-standin" "$OUT.tmp"
mv -f "$OUT.tmp" "$OUT"
sha256sum "$OUT" | cut -d' ' -f1 >"$OUT.sha256"
echo "$SRC_HASH" >"$OUT.src"
log "ok: $OUT sha256=$(cat "$OUT.sha256")"
