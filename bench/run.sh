#!/usr/bin/env bash
# `npm run bench`: installs what the bench needs (Debian's ansible-core, GNU time, pyinfra), then runs
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
# pyinfra, the second peer: installed offline from bench/pyinfra (Debian's Python packages and the
# tarball there); the bench runs without it, and says so, when that fails.
if [[ ! -x "${BENCH_PYINFRA:-/opt/pyinfra/bin/pyinfra}" && -z "${BENCH_NO_PYINFRA_INSTALL:-}" ]]; then
  echo "bench: installing pyinfra (bench/pyinfra/install-pyinfra.sh)" >&2
  bash bench/pyinfra/install-pyinfra.sh >&2 || echo "bench: pyinfra could not be installed; running without it" >&2
fi
exec node --import=tsx bench/bench.ts "$@"
