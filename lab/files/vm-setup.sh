#!/bin/bash
# Runs inside a container of lab/base (network: host) to make lab/vm:
# base + docker.io (+ jq for the runc wrapper). Expects /tmp/runc-wrapper.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d   # don't start services at build
chmod +x /usr/sbin/policy-rc.d
apt-get update -q >/tmp/apt.log 2>&1 || { cat /tmp/apt.log; exit 1; }
apt-get install -y -q --no-install-recommends docker.io jq iptables kmod >/tmp/apt.log 2>&1 \
  || { cat /tmp/apt.log; exit 1; }
rm -f /usr/sbin/policy-rc.d

install -D -m 0755 /tmp/runc-wrapper /usr/local/lib/phoenix-lab/runc-wrapper
mkdir -p /etc/docker
cat >/etc/docker/daemon.json <<'JSON'
{
  "default-runtime": "phoenix-runc",
  "runtimes": { "phoenix-runc": { "path": "/usr/local/lib/phoenix-lab/runc-wrapper" } },
  "storage-driver": "overlay2",
  "log-driver": "json-file",
  "log-opts": { "max-size": "10m", "max-file": "2" }
}
JSON
systemctl enable docker.service containerd.service >/dev/null 2>&1 || true
usermod -aG docker phoenix
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /tmp/* /var/log/*.log
