#!/usr/bin/env bash
# `npm run bench`: installs what the bench needs (Debian's ansible-core, GNU time), then runs
# bench/bench.ts. On demand only, not part of CI. Needs root (the scale workload starts sshd
# servers through test/harness/sshd.ts). Knobs: see the top of bench/bench.ts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
need=()
command -v ansible-playbook >/dev/null || need+=(ansible-core)
[[ -x /usr/bin/time ]] || need+=(time)
if ((${#need[@]})); then
  echo "bench: apt-get install -y ${need[*]}" >&2
  apt-get -o DPkg::Lock::Timeout=300 install -y "${need[@]}" >&2
fi
exec node --import=tsx bench/bench.ts "$@"
