#!/usr/bin/env bash
# Where a run's CPU goes on the whole machine, by process name and by binary or library: every
# process (sshd, sudo, the shells, node), not just the ones `time` sees as the run's children.
# A sampling profile of all CPUs with Linux perf (`apt-get install linux-perf`), while COMMAND runs.
#   bash bench/cpu-probe.sh COMMAND [ARGS...]
# e.g. the 200-host scale workload against sshd servers started beforehand:
#   bash bench/cpu-probe.sh node --import=phoenix/boot bench/noop.ts --inventory INV --forks 200 --plain
# The sampling clock is cpu-clock (a VM often has no hardware counters): "CPU s" is samples × the
# sampling period, for the whole machine, idle CPUs not counted (swapper is the idle loop's own work).
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: bash bench/cpu-probe.sh COMMAND [ARGS...]" >&2; exit 2; }
command -v perf >/dev/null || { echo "cpu-probe: perf is not installed (apt-get install linux-perf)" >&2; exit 2; }
out=$(mktemp -d /tmp/phx-cpu-probe.XXXXXX)
trap 'rm -rf "$out"' EXIT
start=$(date +%s.%N)
perf record -q -a -o "$out/perf.data" -- "$@" >"$out/stdout" 2>"$out/stderr" || { tail -5 "$out/stderr" >&2; exit 1; }
end=$(date +%s.%N)
tail -1 "$out/stdout"
report() { perf report -q -i "$out/perf.data" --stdio --sort "$1" 2>/dev/null; }
total=$(perf report -i "$out/perf.data" --stdio --sort comm 2>/dev/null | sed -n 's/^# Event count (approx.): //p')
awk -v t="$total" -v s="$start" -v e="$end" 'BEGIN { printf "wall %.2f s; CPU sampled %.2f s on %d cores\n", e - s, t / 1e9, '"$(nproc)"' }'
echo "by process name (CPU s, share):"
report comm | awk -v t="$total" 'NF >= 2 { p = $1; sub(/%/, "", p); $1 = ""; printf "  %7.2f  %6.2f%%  %s\n", p * t / 1e11, p, $0 }' | head -12
echo "by process name and binary or library (top 20):"
report comm,dso | awk -v t="$total" 'NF >= 3 { p = $1; sub(/%/, "", p); $1 = ""; printf "  %7.2f  %6.2f%%  %s\n", p * t / 1e11, p, $0 }' | head -20
