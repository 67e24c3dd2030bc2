// The Docker API's own client CA (issue 16, item 1). dockerd's `tlscacert` is this CA, never
// the step-ca root: the step-ca root issues every guest's server certificate, so trusting it
// made any guest's key (the internet-facing gateway's included) a key to the swarm manager.
//
//   - The CA lives on the manager itself (/etc/phoenix/docker-api-client-ca, key 0600 root):
//     whoever is root there is root on the swarm anyway, so the CA key adds no new holder.
//   - It signs only client certificates (extendedKeyUsage=clientAuth, CA:FALSE), one per
//     client, from a CSR made on the client: the Traefik host's key never leaves LXC 102; only
//     the CSR (public) and the certificate travel, through the control machine.
//   - A run re-signs when the certificate is missing, does not chain to this CA, does not match
//     the key, names other hosts, or has less than a third of its lifetime left.
// docs/security.md explains the choice.
import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { shQuote, TaskError, type Action, type ActionContext, type ActionResult } from '../../runner/index.ts';

export const CLIENT_CA_DIR = '/etc/phoenix/docker-api-client-ca';
export const CLIENT_CA_CERT = `${CLIENT_CA_DIR}/ca.crt`;
const CLIENT_CA_KEY = `${CLIENT_CA_DIR}/ca.key`;
/** Lifetime of the CA and of a client certificate, in days. */
export const CLIENT_CA_DAYS = 3650;
export const CLIENT_CERT_DAYS = 365;

/** Creates the CA on the manager when it is missing (never replaces one: clients would stop working). */
export const CLIENT_CA_SCRIPT = `set -e; umask 077
install -d -m 0700 -o root -g root ${CLIENT_CA_DIR}
t=$(mktemp -d ${CLIENT_CA_DIR}/.phx-XXXXXX); trap 'rm -rf "$t"' EXIT
cat > "$t/ext.cnf" <<'CNF'
[req]
distinguished_name = dn
[dn]
[v3_ca]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
CNF
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$t/ca.key"
openssl req -new -x509 -key "$t/ca.key" -subj '/O=Phoenix/CN=Phoenix Docker API client CA' -days ${CLIENT_CA_DAYS} -sha256 -config "$t/ext.cnf" -extensions v3_ca -out "$t/ca.crt"
chmod 0600 "$t/ca.key"; chmod 0644 "$t/ca.crt"
mv "$t/ca.key" ${CLIENT_CA_KEY}; mv "$t/ca.crt" ${CLIENT_CA_CERT}`;

/**
 * Signs the CSR on stdin (on the manager): client auth only, the SANs given, nothing taken from
 * the CSR but its key and CN. `openssl x509 -req` itself refuses a CSR whose self-signature does
 * not match (OpenSSL 1.1.1 and 3), and the serial is 16 bytes of /dev/urandom: one openssl call
 * (~45 ms on the lab's guests), where `req -verify` and `rand` were two more.
 */
export function signScript(names: string[], days: number, ca = { cert: CLIENT_CA_CERT, key: CLIENT_CA_KEY }): string {
  const san = names.map((n) => (/^[\d.]+$/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  return `set -e; umask 077; t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
cat > "$t/csr.pem"
serial=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \\n'); [ \${#serial} -eq 32 ] || { echo 'no random serial from /dev/urandom' >&2; exit 1; }
cat > "$t/ext.cnf" <<'CNF'
[v3_client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = ${san}
CNF
openssl x509 -req -in "$t/csr.pem" -CA ${shQuote(ca.cert)} -CAkey ${shQuote(ca.key)} -set_serial "0x$serial" -days ${days} -sha256 -extfile "$t/ext.cnf" -extensions v3_client -out "$t/crt.pem"
cat "$t/crt.pem"`;
}

/**
 * Looks at the client certificate at `cert`, run on the client with the CA certificate on
 * stdin: the chain and purpose (`openssl verify`, against the CA, on the host), then the
 * public half of its key (`openssl pkey -pubout`: the key never leaves), then the certificate,
 * parsed by clientCertState here. The key comes first: a PUBLIC KEY block inside the
 * certificate file can never be taken for it. OpenSSL 3's decoders cost ~45 ms a call on the lab's guests:
 * two calls instead of five (x509 -pubkey, -ext subjectAltName and -checkend were three more).
 */
export function clientCertProbe(cert: string, key: string): string {
  return `ca=$(mktemp); trap 'rm -f "$ca"' EXIT; cat > "$ca"
if [ ! -s ${shQuote(key)} ]; then echo "reason: no key"; exit 0; fi
if [ ! -s ${shQuote(cert)} ]; then echo "reason: no certificate"; exit 0; fi
openssl verify -CAfile "$ca" -purpose sslclient ${shQuote(cert)} >/dev/null 2>&1 || { echo "reason: not a client certificate of the Docker API client CA"; exit 0; }
pub=$(openssl pkey -in ${shQuote(key)} -pubout 2>/dev/null) || { echo "reason: the key cannot be read"; exit 0; }
echo chained; printf '%s\\n' "$pub"; cat ${shQuote(cert)}`;
}

/**
 * Why the client certificate must be (re-)signed, or "ok", from clientCertProbe's output: it
 * chains (said by the host), matches the key, names exactly `names` (in order) and has at least a
 * third of its lifetime left.
 */
export function clientCertState(out: string, names: string[], days: number, now = Date.now()): string {
  const text = out.trim();
  if (text.startsWith('reason: ')) return text;
  // "chained", the key's PEM (first, from openssl pkey), then the certificate file.
  const m = /^chained\n(-----BEGIN PUBLIC KEY-----\n[\s\S]*?\n-----END PUBLIC KEY-----)\n([\s\S]*)$/.exec(text);
  const pub = m?.[1];
  const cert = m && /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(m[2]!)?.[0];
  if (!pub || !cert) return 'reason: the certificate or its key could not be read';
  let x: X509Certificate;
  try {
    x = new X509Certificate(cert);
  } catch {
    return 'reason: the certificate could not be read';
  }
  const spki = (k: KeyObject) => k.export({ type: 'spki', format: 'der' });
  if (!spki(x.publicKey).equals(spki(createPublicKey(pub)))) return 'reason: does not match the key';
  const want = names.map((n) => (/^[\d.]+$/.test(n) ? `IP Address:${n}` : `DNS:${n}`)).join(', ');
  const san = x.subjectAltName ?? '';
  if (san !== want) return `reason: names ${san}, want ${want}`;
  const third = Math.floor((days * 86400) / 3) * 1000;
  // The remaining lifetime by this machine's clock (expiry itself is openssl verify's, on the host).
  if (!(Date.parse(x.validTo) - now >= third)) return 'reason: less than a third of its lifetime left';
  return 'ok';
}

export interface ClientCertSpec {
  /** The inventory host that holds the CA (the swarm manager). */
  caHost: string;
  names: string[];
  cert: string;
  key: string;
  /** Owner group of the files (the service that reads them). */
  group: string;
  days?: number;
}

/** The client certificate on this host, signed by the manager's client CA from a CSR made here. */
export function dockerClientCert(s: ClientCertSpec): Action {
  const days = s.days ?? CLIENT_CERT_DAYS;
  return {
    module: 'docker_client_cert',
    summary: `${s.cert}: Docker API client certificate for ${s.names.join(', ')} (signed on ${s.caHost})`,
    async run(ctx: ActionContext): Promise<ActionResult> {
      if (!ctx.delegate) throw new TaskError('the Docker API client certificate needs the engine to reach the manager (ActionContext.delegate)');
      const mgr = await ctx.delegate(s.caHost);
      const ca = await mgr(`cat ${CLIENT_CA_CERT}`, { readOnly: true });
      if (ca.code !== 0 || !ca.stdout.includes('BEGIN CERTIFICATE')) {
        // check-mode exception: the client CA is made by the docker api play, which did not really run.
        if (ctx.check) return { changed: 'unknown', msg: `the client CA on ${s.caHost} does not exist yet (check mode)` };
        throw new TaskError(`${s.caHost} has no Docker API client CA (${CLIENT_CA_CERT}); run the docker api play on the manager first`, { stderr: ca.stderr });
      }
      const probe = await ctx.probe(clientCertProbe(s.cert, s.key), { stdin: ca.stdout });
      const state = clientCertState(probe.stdout, s.names, days);
      if (state === 'ok') return { changed: false };
      const why = state.replace(/^reason: /, '');
      return ctx.change({ changed: true, msg: `would sign a client certificate (${why})` }, async () => {
        const dirs = [...new Set([s.cert, s.key].map((p) => p.replace(/\/[^/]+$/, '') || '/'))];
        // The key: made here once (kept across renewals), 0640 root:<group>, by temp + rename.
        const keyCmd =
          `set -e; install -d -m 0750 -o root -g ${shQuote(s.group)} ${dirs.map(shQuote).join(' ')}; ` +
          `if ! openssl pkey -in ${shQuote(s.key)} -noout 2>/dev/null; then t=$(mktemp ${shQuote(`${s.key}.XXXXXX`)}); ` +
          `(umask 077; openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$t"); chown root:${shQuote(s.group)} "$t"; chmod 0640 "$t"; mv -f "$t" ${shQuote(s.key)}; fi; ` +
          `openssl req -new -key ${shQuote(s.key)} -subj ${shQuote(`/CN=${s.names[0]}`)}`;
        const csr = await ctx.run(keyCmd);
        if (csr.code !== 0 || !csr.stdout.includes('BEGIN CERTIFICATE REQUEST')) throw new TaskError(`${ctx.host.name}: cannot make the client key or CSR`, { stderr: csr.stderr, code: csr.code });
        const signed = await mgr(signScript(s.names, days), { stdin: csr.stdout });
        if (signed.code !== 0 || !signed.stdout.includes('BEGIN CERTIFICATE')) throw new TaskError(`${s.caHost}: the Docker API client CA refused to sign the CSR of ${ctx.host.name}`, { stderr: signed.stderr, code: signed.code });
        const put = await ctx.run(
          `set -e; t=$(mktemp ${shQuote(`${s.cert}.XXXXXX`)}); cat > "$t"; chown root:${shQuote(s.group)} "$t"; chmod 0644 "$t"; mv -f "$t" ${shQuote(s.cert)}`,
          { stdin: signed.stdout },
        );
        if (put.code !== 0) throw new TaskError(`${ctx.host.name}: cannot write ${s.cert}`, { stderr: put.stderr, code: put.code });
        const after = clientCertState((await ctx.probe(clientCertProbe(s.cert, s.key), { stdin: ca.stdout })).stdout, s.names, days);
        if (after !== 'ok') throw new TaskError(`${ctx.host.name}: the new client certificate does not check out: ${after}`);
        return { changed: true, msg: `signed by ${s.caHost}'s Docker API client CA (${why})` };
      });
    },
  };
}
