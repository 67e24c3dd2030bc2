# phoenix roles/step-ca: the key password of the root and intermediate keys (sent as the
# command; run as root). stdin: line 1 the wanted password (stepCa.keyPassword), in "rotate"
# mode the rest a scratch ca.json with @SCRATCH_DB@ and @SCRATCH_KEY@ placeholders. The password
# is only ever in this shell's memory, builtin printf's output and files under the 0700
# secrets directory: never on an argument list.
#   MODE=probe   prints "state: ok|file|rotate|neither|nokeys"
#   MODE=rotate  re-encrypts both keys with the wanted password (opened with the password file),
#                proves the set with a scratch step-ca, then moves it in (see
#                step-ca-finish-rotation.sh) keeping the old set in .rotate-prev for a rollback.
set -eu
S=/etc/step-ca/secrets
PW=$S/password
NEW=
IFS= read -r NEW || [ -n "$NEW" ]
opens() { printf '%s\n' "$2" | openssl pkey -in "$1" -passin stdin -noout 2>/dev/null; }
file_opens() { openssl pkey -in "$1" -passin "file:$PW" -noout 2>/dev/null; }

if [ "$MODE" = probe ]; then
  if [ ! -e "$S/root_ca_key" ] && [ ! -e "$S/intermediate_ca_key" ]; then echo "state: nokeys"; exit 0; fi
  if opens "$S/root_ca_key" "$NEW" && opens "$S/intermediate_ca_key" "$NEW"; then
    if [ -f "$PW" ] && printf '%s' "$NEW" | cmp -s - "$PW"; then echo "state: ok"; else echo "state: file"; fi
    exit 0
  fi
  if [ -f "$PW" ] && file_opens "$S/root_ca_key" && file_opens "$S/intermediate_ca_key"; then echo "state: rotate"; else echo "state: neither"; fi
  exit 0
fi

[ "$MODE" = rotate ] || { echo "unknown MODE" >&2; exit 2; }
N=$S/.rotate-new
d=$(mktemp -d /tmp/step-ca-rotate.XXXXXX)
pid=
trap 'if [ -n "$pid" ]; then kill $pid 2>/dev/null; wait $pid 2>/dev/null; fi; rm -rf "$d" "$N"' EXIT
rm -rf "$N"; mkdir -m 0700 "$N"
(umask 077; printf '%s' "$NEW" > "$N/password")
for k in root_ca_key intermediate_ca_key; do
  (umask 077; openssl pkey -in "$S/$k" -passin "file:$PW" -aes-256-cbc -passout "file:$N/password" -out "$N/$k")
  a=$(openssl pkey -in "$S/$k" -passin "file:$PW" -pubout)
  b=$(openssl pkey -in "$N/$k" -passin "file:$N/password" -pubout)
  [ "$a" = "$b" ] || { echo "the re-encrypted $k is not the same key" >&2; exit 1; }
done
chown -R step:step "$N"; chmod 0600 "$N"/*
# The scratch step-ca: the live binary, certificates and config, the new key and password.
sed -e "s#@SCRATCH_DB@#$d/db#" -e "s#@SCRATCH_KEY@#$N/intermediate_ca_key#" > "$d/ca.json"
chown -R step:step "$d"
setpriv --reuid=step --regid=step --init-groups env STEPPATH=/etc/step-ca /usr/local/bin/step-ca --password-file "$N/password" "$d/ca.json" > "$d/log" 2>&1 & pid=$!
ok=; n=0
while [ $n -lt 300 ]; do n=$((n + 1)); if grep -q 'Serving HTTPS' "$d/log"; then ok=1; break; fi; kill -0 $pid 2>/dev/null || break; sleep 0.1; done
if [ -z "$ok" ]; then echo "a scratch step-ca did not start with the re-encrypted keys: $(grep -v -e '^[[:space:]]*$' -e '^badger ' "$d/log" | tail -n 2 | tr '\n' ' ')" >&2; exit 1; fi
kill $pid; wait $pid 2>/dev/null || true; pid=
# The old set, hard-linked, for a rollback if the live step-ca does not come back.
rm -rf "$S/.rotate-prev"; mkdir -m 0700 "$S/.rotate-prev"; chown step:step "$S/.rotate-prev"
ln "$S/root_ca_key" "$S/intermediate_ca_key" "$PW" "$S/.rotate-prev/"
# The verified set becomes the marker by one rename, then its files are moved in, in order.
mv "$N" "$S/.rotate-ready"
/usr/local/lib/phoenix/step-ca-finish-rotation
echo rotated
