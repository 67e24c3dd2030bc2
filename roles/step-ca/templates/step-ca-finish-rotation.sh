#!/bin/sh
# Managed by phoenix (roles/step-ca): finishes a key password rotation that was verified but
# interrupted while its files were being moved in. The verified set waits in
# /etc/step-ca/secrets/.rotate-ready (its presence is the marker); the files are moved in the
# order root key, intermediate key, password, each by rename. Run by phoenix before it touches
# the keys and by step-ca.service before every start (ExecStartPre=+), so step-ca never starts
# on a half-moved set. Does nothing when there is no marker.
set -eu
S=/etc/step-ca/secrets
[ -d "$S/.rotate-ready" ] || exit 0
for f in root_ca_key intermediate_ca_key password; do
  if [ -e "$S/.rotate-ready/$f" ]; then mv -f "$S/.rotate-ready/$f" "$S/$f"; fi
done
rmdir "$S/.rotate-ready"
