#!/usr/bin/env bash
# phoenix lab: one line per guest — name, IP, container state, whether ssh answers
# (as phoenix, with the lab key, strict host key checking against .lab/known_hosts).
# Exit 0 when every guest is running and answers ssh, 1 otherwise.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if dockerd_up; then
  daemon="running (pid $(dockerd_pid || echo '?'), $SOCK)"
else
  daemon="not running"
fi
echo "lab dockerd: $daemon"

declare -A state=()
if dockerd_up; then
  while read -r n s; do state[$n]="$s"; done \
    < <(ldocker ps -a --filter "label=$LAB_LABEL=guest" --format '{{.Names}} {{.State}}')
fi

have_key=0
[[ -s "$STATE_DIR/id_ed25519" && -s "$STATE_DIR/known_hosts" ]] && have_key=1
mapfile -t opts < <(ssh_opts)
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
for g in "${GUESTS[@]}"; do
  read -r name ip _ <<<"$g"
  if ((have_key)) && [[ "${state[$name]:-}" == running ]]; then
    ( ssh "${opts[@]}" -o ConnectTimeout=2 "phoenix@$ip" true </dev/null >/dev/null 2>&1 \
        && echo yes >"$tmp/$name" || echo no >"$tmp/$name" ) &
  else
    echo no >"$tmp/$name"
  fi
done
wait

ok=1
printf '%-8s %-16s %-10s %s\n' GUEST IP STATE SSH
for g in "${GUESTS[@]}"; do
  read -r name ip _ <<<"$g"
  s="${state[$name]:-absent}"; a="$(cat "$tmp/$name")"
  [[ "$s" == running && "$a" == yes ]] || ok=0
  printf '%-8s %-16s %-10s %s\n' "$name" "$ip" "$s" "$a"
done
((have_key)) || echo "(no .lab/id_ed25519 or .lab/known_hosts: run npm run lab:up)"
((ok))
