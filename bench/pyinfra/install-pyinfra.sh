#!/usr/bin/env bash
# Installs pyinfra 2.9.2 (MIT, github.com/pyinfra-dev/pyinfra, tag v2.9.2) offline, for benchmarks
# only: PyPI is not reachable here, so its Python dependencies come from Debian and the source
# from the tarball beside this script. Usage: install-pyinfra.sh [VENV_DIR]  (default /opt/pyinfra)
# Then: VENV_DIR/bin/pyinfra --version
# A copy of the project-provided offline installer (kept in this repo so the bench stands alone); python3-winrm added: pyinfra
# loads every connector by entry point at start, the winrm one included.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${1:-/opt/pyinfra}"
export DEBIAN_FRONTEND=noninteractive
apt-get -q -o DPkg::Lock::Timeout=300 install -y python3-venv python3-pip python3-gevent python3-paramiko \
  python3-click python3-winrm python3-jinja2 python3-dateutil python3-distro python3-packaging python3-setuptools >/dev/null
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
tar -xzf "$here/pyinfra-2.9.2.tar.gz" -C "$work"
# Debian's python, not any other python3 on PATH, so the venv sees Debian's packages.
/usr/bin/python3 -m venv --system-site-packages "$venv"
"$venv/bin/pip" install -q --no-deps --no-index --no-build-isolation "$work/pyinfra-2.9.2"
# pkg_resources checks declared requirements when loading pyinfra's connectors by entry point;
# the Debian packages provide them under other distribution names, so drop the declarations.
sed -i '/^Requires-Dist/d' "$venv"/lib/python3*/site-packages/pyinfra-2.9.2.dist-info/METADATA
"$venv/bin/pyinfra" --version
