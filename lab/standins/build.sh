#!/usr/bin/env bash
# Build a Go stand-in image for the lab: lab/standins/NAME/*.go -> phoenix/NAME-standin:lab
#   lab/standins/build.sh [--check] NAME
# The program is built offline with Debian's Go (GOPATH mode, stdlib only, CGO_ENABLED=0, so a
# static binary) and put on a busybox-static rootfs at /usr/local/bin/NAME-standin, with
# lab/standins/NAME/rootfs/ copied over it. lab/standins/NAME/image.conf holds the image's
# Dockerfile-style config lines (ENTRYPOINT, CMD, WORKDIR, EXPOSE, ENV), one per line.
# Cached by content: the image carries label phoenix.lab.hash = hash of this script, the
# stand-in's files and busybox; nothing is rebuilt when they did not change.
# --check: exit 0 when the image is current, 3 when a build is needed; builds nothing.
# Needs root and the lab's dockerd (lab/up.sh calls it; loading into the VMs is up.sh's job).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

BUILD_REV=1
CHECK=0
if [[ "${1:-}" == --check ]]; then CHECK=1; shift; fi
NAME="${1:?usage: lab/standins/build.sh [--check] NAME}"
SRC="$LAB_DIR/standins/$NAME"
IMAGE="phoenix/$NAME-standin:lab"
[[ -d "$SRC" ]] && compgen -G "$SRC/*.go" >/dev/null || die "stand-in $NAME: no Go sources in $SRC"

slog() { printf '[standin %s] %s\n' "$NAME" "$*" >&2; }

HASH="$( {
  echo "rev $BUILD_REV"; cat "${BASH_SOURCE[0]}"; sha256sum /bin/busybox
  (cd "$SRC" && find . -type f ! -name '*~' | LC_ALL=C sort | while read -r f; do echo "$f"; cat "$f"; done)
} | sha256sum | cut -c1-16)"
have="$(ldocker image inspect -f '{{index .Config.Labels "phoenix.lab.hash"}}' "$IMAGE" 2>/dev/null || true)"
if [[ "$have" == "$HASH" ]]; then
  ((CHECK)) || slog "cached: $IMAGE"
  exit 0
fi
((CHECK)) && exit 3

if ! command -v go >/dev/null 2>&1; then
  slog "installing golang-go"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=300 golang-go >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 || true; DEBIAN_FRONTEND=noninteractive apt-get install -y -q golang-go >/dev/null; }
fi

work="$(mktemp -d /tmp/phoenix-standin-build.XXXXXX)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/gopath/src/phoenix-lab/$NAME" "$work/root"/{bin,etc,tmp,usr/local/bin}
cp "$SRC"/*.go "$work/gopath/src/phoenix-lab/$NAME/"
mkdir -p "$LAB_CACHE/go-build-cache"
start=$SECONDS
(
  cd "$work/gopath/src/phoenix-lab/$NAME"
  GO111MODULE=off GOFLAGS='' GOPROXY=off GOPATH="$work/gopath" GOCACHE="$LAB_CACHE/go-build-cache" CGO_ENABLED=0 \
    go build -trimpath -ldflags '-s -w' -o "$work/root/usr/local/bin/$NAME-standin" . >"$work/build.log" 2>&1
) || { cat "$work/build.log" >&2; die "stand-in $NAME: go build failed"; }
slog "built in $((SECONDS - start))s"

root="$work/root"
chmod 1777 "$root/tmp"
install -m 0755 /bin/busybox "$root/bin/busybox"
chroot "$root" /bin/busybox --install -s /bin
printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
[[ -d "$SRC/rootfs" ]] && cp -a "$SRC/rootfs/." "$root/"

changes=()
if [[ -f "$SRC/image.conf" ]]; then
  while IFS= read -r line; do
    [[ -z "${line// }" || "$line" == \#* ]] && continue
    changes+=(-c "$line")
  done <"$SRC/image.conf"
fi
tar -C "$root" -c . | ldocker import "${changes[@]}" \
  -c "LABEL phoenix.lab.hash=$HASH" -c "LABEL phoenix.standin=true" \
  -c "LABEL org.opencontainers.image.title=$NAME-standin" \
  -c "LABEL org.opencontainers.image.description=\"phoenix lab stand-in for $NAME (Go, NOT the real $NAME)\"" \
  - "$IMAGE" >/dev/null
slog "image $IMAGE ($HASH)"
