#!/usr/bin/env bash
# phoenix lab smoke test: checks a running lab for real and leaves it as it found it.
#   bash lab/verify.sh
# - every guest: ssh as phoenix with the lab key + strict host key checking, sudo -n
# - root login by key works, password auth is refused
# - hostnames match, machine-ids differ, a file written on one guest is not on another
# - vm1001: swarm init, vm1002 joins, a stand-in runs in the inner docker and answers
#   HTTP from the host; then both leave the swarm again
# - the cached step-ca binary runs on lxc103
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

pass=0 fail=0
ok()  { pass=$((pass + 1)); printf 'ok   %s\n' "$*"; }
bad() { fail=$((fail + 1)); printf 'FAIL %s\n' "$*"; }
check() { local d="$1"; shift; if "$@" >/dev/null 2>&1; then ok "$d"; else bad "$d"; fi; }

[[ -s "$STATE_DIR/lab.json" ]] || { echo "no $STATE_DIR/lab.json: run npm run lab:up" >&2; exit 1; }
mapfile -t opts < <(ssh_opts)
s() { local who="$1"; shift; ssh "${opts[@]}" "$who" "$@" </dev/null; }
ipof() { jq -r --arg n "$1" '.hosts[$n].address' "$STATE_DIR/lab.json"; }

declare -A mid=()
for name in $(jq -r '.hosts | keys[]' "$STATE_DIR/lab.json"); do
  ip="$(ipof "$name")"
  out="$(s "phoenix@$ip" 'sudo -n true && hostname && cat /etc/machine-id' 2>&1)"
  if [[ "$(sed -n 1p <<<"$out")" == "$name" ]]; then ok "$name: ssh phoenix@$ip + sudo -n, hostname"; else bad "$name: ssh/sudo/hostname: $out"; fi
  mid[$name]="$(sed -n 2p <<<"$out")"
  check "$name: root login by key" s "root@$ip" true
  if ssh -o UserKnownHostsFile="$STATE_DIR/known_hosts" -o StrictHostKeyChecking=yes -o BatchMode=yes \
       -o PubkeyAuthentication=no -o PreferredAuthentications=password,keyboard-interactive \
       -o ConnectTimeout=3 "phoenix@$ip" true </dev/null >/dev/null 2>&1; then
    bad "$name: password/keyboard-interactive login should be refused"
  else ok "$name: no password login"; fi
done
if [[ "$(printf '%s\n' "${mid[@]}" | sort -u | grep -c .)" == "${#mid[@]}" ]]; then ok "machine-ids all differ"; else bad "machine-ids not unique"; fi

tag="phoenix-lab-isolation-$$"
a="$(ipof lxc101)"; b="$(ipof lxc102)"
s "phoenix@$a" "echo x | sudo tee /etc/$tag >/dev/null"
check "file written on lxc101 exists there" s "phoenix@$a" "test -f /etc/$tag"
if s "phoenix@$b" "test -e /etc/$tag"; then bad "file from lxc101 visible on lxc102"; else ok "file from lxc101 not visible on lxc102"; fi
s "phoenix@$a" "sudo rm -f /etc/$tag"

m="$(ipof vm1001)"; w="$(ipof vm1002)"
if s "phoenix@$m" "sudo docker swarm init --advertise-addr $m" >/dev/null 2>&1; then
  ok "vm1001: docker swarm init"
  tok="$(s "phoenix@$m" 'sudo docker swarm join-token -q worker')"
  check "vm1002: docker swarm join" s "phoenix@$w" "sudo docker swarm join --token $tok $m:2377"
  n="$(s "phoenix@$m" "sudo docker node ls -q | wc -l")"
  [[ "$n" == 2 ]] && ok "swarm has 2 nodes" || bad "swarm has $n nodes"
else
  bad "vm1001: docker swarm init (already in a swarm?)"
fi
s "phoenix@$w" 'sudo docker rm -f lab-verify-standin >/dev/null 2>&1; sudo docker run -d --name lab-verify-standin -p 6333:6333 phoenix/qdrant-standin:lab' >/dev/null 2>&1
got=""
for _ in $(seq 1 20); do got="$(curl -fsS -m 2 "http://$w:6333/" 2>/dev/null)" && break; sleep 0.25; done
if jq -e '.title == "qdrant-standin"' <<<"$got" >/dev/null 2>&1; then ok "qdrant stand-in in vm1002's docker answers http://$w:6333/"; else bad "qdrant stand-in: got '$got'"; fi
s "phoenix@$w" 'sudo docker rm -f lab-verify-standin' >/dev/null 2>&1
s "phoenix@$w" 'sudo docker swarm leave --force' >/dev/null 2>&1
s "phoenix@$m" 'sudo docker swarm leave --force' >/dev/null 2>&1
st="$(s "phoenix@$m" "sudo docker info -f '{{.Swarm.LocalNodeState}}'")/$(s "phoenix@$w" "sudo docker info -f '{{.Swarm.LocalNodeState}}'")"
[[ "$st" == inactive/inactive ]] && ok "both VMs left the swarm again" || bad "swarm state after leave: $st"

bin="$(jq -r '.stepCa.binary // empty' "$STATE_DIR/lab.json")"
if [[ -n "$bin" ]]; then
  c="$(ipof lxc103)"
  if scp -q "${opts[@]}" "$bin" "phoenix@$c:/tmp/step-ca-verify" </dev/null \
     && s "phoenix@$c" '/tmp/step-ca-verify version | grep -q "Smallstep CA"; r=$?; rm -f /tmp/step-ca-verify; exit $r'; then
    ok "step-ca binary runs on lxc103"
  else bad "step-ca binary on lxc103"; fi
else
  bad "lab.json has no stepCa binary"
fi

echo "$pass passed, $fail failed"
((fail == 0))
