#!/usr/bin/env bash
# Starts proxmox-standin (a STAND-IN for the Proxmox VE API, not Proxmox) on the lab machine:
# its own CA and server certificate, the lab's API token, the cloud-init template VM 9000, the
# five lab guests registered with their declared configs, then the server in the background.
# Idempotent: a running stand-in whose code is unchanged is kept. Called by lab/up.sh.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
STATE=/var/lib/phoenix-lab/proxmox
RUN=/run/phoenix-lab
PIDFILE=$RUN/proxmox-standin.pid
TOKEN=/var/lib/phoenix-lab/secrets/proxmox-token
mkdir -p "$STATE/tls" "$STATE/configs" "$RUN" /var/lib/phoenix-lab/secrets
chmod 700 "$STATE/tls" /var/lib/phoenix-lab/secrets

# TLS: the stand-in's own CA (like Proxmox's pve-root-ca.pem) and a server certificate for 127.0.0.1.
if [[ ! -s "$STATE/tls/server.crt" ]]; then
  (
    cd "$STATE/tls"
    umask 077
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj "/CN=phoenix lab proxmox-standin CA" \
      -keyout ca.key -out ca.crt -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=proxmox-standin" -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' >ext.cnf
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 -extfile ext.cnf -out server.crt 2>/dev/null
    rm -f server.csr ext.cnf
    chmod 644 ca.crt
  )
fi
# The API token's secret (a lab-only random UUID-like value), 0600.
if [[ ! -s "$TOKEN" ]]; then
  (umask 077; cat /proc/sys/kernel/random/uuid >"$TOKEN")
fi
# The cloud-init template VM 9000 (its "disk" is the lab/vm image).
if [[ ! -s "$STATE/configs/9000.json" ]]; then
  jq -n '{vmid: 9000, kind: "qemu", container: "pve-template-9000", image: "lab/vm",
          config: {name: "debian-12-cloudinit", template: "1", cores: "1", memory: "1024", ostype: "l26",
                   scsi0: "local-lvm:base-9000-disk-0,size=4G", ide2: "local-lvm:vm-9000-cloudinit,media=cdrom",
                   agent: "1", boot: "order=scsi0", net0: "virtio=BC:24:11:90:00:00,bridge=vmbr0"}}' >"$STATE/configs/9000.json"
fi
# The five lab guests, registered with the configs the lab inventory declares (lab:up made them).
(cd "$REPO" && node --import=tsx lab/standins/proxmox/register.ts)

hash="$(cat "$HERE/server.ts" | sha256sum | cut -c1-16)"
if [[ -s "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  if [[ "$(cat "$PIDFILE.hash" 2>/dev/null)" == "$hash" ]]; then echo "proxmox-standin: running (pid $(cat "$PIDFILE"))"; exit 0; fi
  kill "$(cat "$PIDFILE")" && sleep 0.5
fi
cd "$REPO"
# 9>&-: the server must not inherit lab:up's lock (fd 9): it would hold it for its whole life and
# every later lab:up/lab:down would wait for it (as lab/up.sh does for dockerd).
setsid nohup node --import=tsx "$HERE/server.ts" >>"$STATE/server.log" 2>&1 </dev/null 9>&- &
echo $! >"$PIDFILE"
echo "$hash" >"$PIDFILE.hash"
for _ in $(seq 1 50); do
  if { printf 'Authorization: PVEAPIToken=phoenix@pve!lab='; cat "$TOKEN"; } | curl -fsS --cacert "$STATE/tls/ca.crt" -H @- https://127.0.0.1:8006/api2/json/version >/dev/null 2>&1; then
    echo "proxmox-standin: started (pid $(cat "$PIDFILE")) on https://127.0.0.1:8006"; exit 0
  fi
  sleep 0.2
done
echo "proxmox-standin: did not answer; see $STATE/server.log" >&2
exit 1
