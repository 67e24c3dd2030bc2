// acme_cert: a certificate for this host's service from an ACME CA (here: step-ca), issued and
// renewed by certbot from Debian, so the private key is generated on the host that uses it
// (certbot writes it 0600) and unattended renewal is certbot's own timer. A run issues only when
// the certificate is missing, names the wrong names, no longer chains to a trusted root, or has
// less than `renewBefore` of its lifetime left; check mode only says which.
import { X509Certificate } from 'node:crypto';
import { shQuote } from '../connection/shell.ts';
import type { Action, ActionContext, ActionResult } from '../types.ts';
import { NotYetError, TaskError } from '../types.ts';
import { invalidArgs } from './args.ts';

export interface AcmeCertOptions {
  /** certbot's lineage name: files in /etc/letsencrypt/live/<certName>/. */
  certName: string;
  /** DNS names, the first is the subject. Each must resolve to this host from the CA. */
  names: string[];
  /** The ACME directory URL. */
  directory: string;
  /** How the http-01 challenge is answered: files in a web root served on :80, or certbot's own server. */
  challenge: { webroot: string } | { standalone: { port?: number; address?: string } };
  /** Renew when less than this fraction of the lifetime is left (default 1/3). */
  renewBefore?: number;
  /** Run after each issuance or renewal, also by the timer (e.g. "systemctl reload nginx"). */
  deployHook?: string;
  /** Trusted roots for the ACME server and for checking the chain (default: the system store). */
  caBundle?: string;
  email?: string;
  /** Seconds to wait while another certbot holds its lock (default 120). */
  lockTimeout?: number;
}

export interface CertState {
  exists: boolean;
  serial?: string;
  notBefore?: number;
  notAfter?: number;
  names?: string[];
  /** Chains to a root in caBundle. */
  trusted?: boolean;
}

export const liveDir = (certName: string) => `/etc/letsencrypt/live/${certName}`;

/** Parses the probe's output: cert.pem itself (parsed here), or `openssl x509 -serial -startdate -enddate -ext subjectAltName`; then verify:ok|fail. */
export function parseCertProbe(out: string): CertState {
  if (/^absent$/m.test(out)) return { exists: false };
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(out)?.[0];
  if (pem) {
    let x: X509Certificate;
    try {
      x = new X509Certificate(pem);
    } catch (e) {
      throw new TaskError(`cannot parse the certificate: ${(e as Error).message}`);
    }
    const names = (x.subjectAltName ?? '')
      .split(',')
      .map((n) => n.trim())
      .filter((n) => n.startsWith('DNS:'))
      .map((n) => n.slice(4));
    return { exists: true, serial: x.serialNumber, notBefore: Date.parse(x.validFrom), notAfter: Date.parse(x.validTo), names, trusted: /^verify:ok$/m.test(out) };
  }
  const get = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(out)?.[1]?.trim();
  const san = /X509v3 Subject Alternative Name:[^\n]*\n\s*([^\n]*)/.exec(out)?.[1] ?? '';
  const names = san
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4));
  return {
    exists: true,
    serial: get('serial'),
    notBefore: Date.parse(get('notBefore') ?? ''),
    notAfter: Date.parse(get('notAfter') ?? ''),
    names,
    trusted: /^verify:ok$/m.test(out),
  };
}

/** Why the certificate must be (re)issued now, or undefined when it is fine. */
export function needsIssue(st: CertState, names: string[], renewBefore: number, now = Date.now()): string | undefined {
  if (!st.exists) return 'no certificate yet';
  const want = [...new Set(names)].sort().join(',');
  if ([...new Set(st.names)].sort().join(',') !== want) return `names differ (has ${st.names?.join(', ') || 'none'})`;
  const life = st.notAfter! - st.notBefore!;
  if (!(life > 0)) return 'unreadable validity dates';
  if (now >= st.notAfter!) return 'expired';
  if (!st.trusted) return 'does not chain to a trusted root';
  const left = (st.notAfter! - now) / life;
  if (left < renewBefore) return `${Math.max(0, Math.round(left * 100))}% of its lifetime left, renewing below ${Math.round(renewBefore * 100)}%`;
  return undefined;
}

/** The system store: one file, and the same roots hashed one per file (update-ca-certificates writes both). */
const SYSTEM_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
const SYSTEM_HASHED = '/etc/ssl/certs';

/**
 * The probe: cert.pem itself (parsed on the control machine: each `openssl x509` costs ~45 ms
 * on the lab's guests, OpenSSL 3's decoders) and whether it chains to a root in caBundle
 * (openssl verify, on the host, against the host's store). With the system store (no caBundle
 * given), the hashed directory is asked first: OpenSSL then reads only the issuer's root, where
 * the bundle is ~150 certificates parsed on every look (8 ms against ~40 ms on the lab's
 * guests); a certificate it does not find trusted is checked against the bundle as before.
 */
export const certProbe = (certName: string, caBundle: string, system = { bundle: SYSTEM_BUNDLE, hashed: SYSTEM_HASHED }, live = liveDir(certName)) => {
  const verify = (where: string) => `openssl verify ${where} -untrusted ${live}/chain.pem ${live}/cert.pem >/dev/null 2>&1`;
  // A caBundle of its own is the only store: OpenSSL would also read its default directory and
  // file (and on 3.x its default store, which falls back to them); -no-CAstore is 3.x only, so
  // the defaults are pointed at nothing instead.
  const only = (file: string) => `SSL_CERT_DIR=/nonexistent SSL_CERT_FILE=/nonexistent ${verify(`-no-CApath -CAfile ${shQuote(file)}`)}`;
  const trusted = caBundle === system.bundle ? `{ ${verify(`-no-CAfile -CApath ${shQuote(system.hashed)}`)} || ${verify(`-CAfile ${shQuote(system.bundle)}`)}; }` : only(caBundle);
  return `if [ -f ${live}/cert.pem ]; then cat ${live}/cert.pem || exit 1; echo; if ${trusted}; then echo verify:ok; else echo verify:fail; fi; else echo absent; fi`;
};

export async function certState(ctx: ActionContext, certName: string, caBundle: string): Promise<CertState> {
  const r = await ctx.probe(certProbe(certName, caBundle));
  if (r.code !== 0) throw new TaskError(`cannot read the certificate ${certName}`, { command: `cat ${liveDir(certName)}/cert.pem`, stderr: r.stderr, code: r.code });
  return parseCertProbe(r.stdout);
}

const NO_CERTBOT = 'phoenix:no-certbot-or-openssl';

export function acmeCert(o: AcmeCertOptions): Action {
  const invalid = invalidArgs('acme_cert', o);
  if (invalid) return invalid;
  const caBundle = o.caBundle ?? SYSTEM_BUNDLE;
  return {
    module: 'acme_cert',
    summary: `certificate ${o.certName} for ${o.names.join(', ')}`,
    async run(ctx): Promise<ActionResult> {
      const where = `certificate ${o.certName}`;
      if (!o.names.length) throw new TaskError(`${where}: no names`);
      const bad = o.names.find((n) => !/^[A-Za-z0-9.-]+$/.test(n));
      if (bad) throw new TaskError(`${where}: "${bad}" is not a DNS name`);
      // One round trip: certbot and openssl there, then the certificate's state.
      const r = await ctx.probe(`{ command -v certbot && command -v openssl; } >/dev/null 2>&1 || { echo ${NO_CERTBOT}; exit 0; }; ${certProbe(o.certName, caBundle)}`);
      if (r.code === 0 && r.stdout.trim() === NO_CERTBOT) throw new NotYetError(`${where}: certbot or openssl is not installed on ${ctx.host.name}`);
      if (r.code !== 0) throw new TaskError(`cannot read the certificate ${o.certName}`, { command: `cat ${liveDir(o.certName)}/cert.pem`, stderr: r.stderr, code: r.code });
      const st = parseCertProbe(r.stdout);
      const why = needsIssue(st, o.names, o.renewBefore ?? 1 / 3);
      if (!why) return { changed: false, data: { serial: st.serial, notAfter: st.notAfter } };
      const msg = st.exists ? `renew: ${why}` : 'issue: no certificate yet';
      // Check mode asks the CA for nothing: the engine calls apply only in a real run.
      return ctx.change({ changed: true, msg }, async () => {
        const args = [
          'certbot certonly --non-interactive --agree-tos --no-eff-email --quiet',
          `--server ${shQuote(o.directory)}`,
          `--cert-name ${shQuote(o.certName)}`,
          '--key-type ecdsa --elliptic-curve secp256r1',
          ...o.names.map((n) => `-d ${shQuote(n)}`),
          o.email ? `-m ${shQuote(o.email)}` : '--register-unsafely-without-email',
          'webroot' in o.challenge
            ? `--webroot -w ${shQuote(o.challenge.webroot)}`
            : `--standalone --http-01-port ${o.challenge.standalone.port ?? 80}${o.challenge.standalone.address ? ` --http-01-address ${shQuote(o.challenge.standalone.address)}` : ''}`,
          o.deployHook ? `--deploy-hook ${shQuote(o.deployHook)}` : '',
          st.exists ? '--force-renewal' : '',
        ].filter(Boolean);
        const cmd = args.join(' ');
        // certbot holds a lock while it runs (its timer's `certbot renew`, another lineage's task):
        // wait for it, bounded, as apt waits for dpkg's lock.
        let r = await ctx.run(cmd, { env: { REQUESTS_CA_BUNDLE: caBundle }, timeout: 180 });
        for (const end = Date.now() + (o.lockTimeout ?? 120) * 1000; r.code !== 0 && /Another instance of Certbot is already running/.test(r.stderr) && Date.now() < end; ) {
          await new Promise((res) => setTimeout(res, 1000));
          r = await ctx.run(cmd, { env: { REQUESTS_CA_BUNDLE: caBundle }, timeout: 180 });
        }
        if (r.code !== 0) {
          const log = await ctx.probe('tail -n 15 /var/log/letsencrypt/letsencrypt.log 2>/dev/null | grep -iE "error|detail|problem" | tail -n 3; true');
          throw new TaskError(`${where}: certbot failed`, { command: cmd, stderr: `${r.stderr}${log.stdout}`, code: r.code });
        }
        const after = await certState(ctx, o.certName, caBundle);
        return { changed: true, msg: `${msg} -> serial ${after.serial}`, data: { serial: after.serial, notAfter: after.notAfter } };
      });
    },
  };
}
