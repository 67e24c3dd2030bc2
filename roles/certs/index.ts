// Certificates from step-ca for any guest's service, one mechanism for all: certbot from Debian
// over ACME http-01 against step-ca's ACME directory (roles/certs/vars.ts). A role that serves
// TLS adds these tasks; the key is made on its host, renewal runs from certbot's own timer, and
// a run re-issues only when less than a third of the lifetime is left.
import { acmeCert, apt, liveDir, shQuote, systemd, task, TaskError, type AcmeCertOptions, type Action, type ActionResult, type Handler, type Task, type TaskEnv } from '../../runner/index.ts';
import type { BaseVars } from '../base-vars.ts';
import type { CertVars } from './vars.ts';

/** What certificateTasks reads of a host's vars (a role adds these to its own). */
export type CertRoleVars = CertVars & BaseVars;

export { liveDir } from '../../runner/index.ts';
export { certDefaults, type CertVars } from './vars.ts';

export interface CertificateSpec<V extends CertRoleVars> {
  /** certbot's lineage name: /etc/letsencrypt/live/<certName>/{fullchain,privkey}.pem. */
  certName: string;
  /** DNS names (each must resolve to this host on the CA, see roles/trust). */
  names: (env: TaskEnv<V>) => string[];
  challenge: AcmeCertOptions['challenge'];
  /** Run by certbot after every issuance and renewal, also unattended (e.g. reload the service). */
  deployHook?: string;
  /** Handlers to notify when a run issued or renewed the certificate. */
  notify?: Handler<V>[];
  tags?: string[];
}

/**
 * Waits, bounded, until the endpoint presents the lineage's cert.pem (same SHA-256 fingerprint):
 * a role adds it where its service must be serving, so a run in which certbot's deploy hook
 * restarted or reloaded the service (possibly detached) ends only once the new certificate is
 * served. Read-only; in check mode it only looks.
 */
export function servedCertificate(
  certName: string,
  at: {
    address: string;
    port: number;
    serverName: string;
    timeout?: number;
    /** A shell condition that must hold too (e.g. a restart the hook started detached has finished). */
    settled?: string;
  },
): Action {
  const timeout = at.timeout ?? 90;
  // The served leaf and cert.pem compared as PEM text (line breaks dropped): the same DER is the
  // same base64. A fingerprint (openssl x509) only for the message: each openssl x509 costs
  // ~45 ms on the lab's guests (OpenSSL 3's decoders), twice per look before.
  const pem = `sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p'`;
  // Only the served certificate is read (compared below), never s_client's own verdict: the
  // system bundle's ~150 certificates are not parsed (-no-CAfile -no-CApath; OpenSSL 1.1 and 3;
  // 3.x still opens its default store, cheaply; -no-CAstore would break 1.1): 26 ms a look on
  // vm1001 against 70-78 ms.
  const served = `echo | timeout 5 openssl s_client -no-CAfile -no-CApath -connect ${shQuote(`${at.address}:${at.port}`)} -servername ${shQuote(at.serverName)} 2>/dev/null | ${pem}`;
  const shown = `$(if [ -n "$raw" ]; then printf '%s\\n' "$raw" | openssl x509 -noout -fingerprint -sha256 2>/dev/null; else echo nothing; fi)`;
  const cmd =
    `want=$(${pem} ${liveDir(certName)}/cert.pem 2>/dev/null | tr -d '\\r\\n'); [ -n "$want" ] || { echo "no certificate"; exit 3; }; ` +
    `end=$(( $(date +%s) + ${timeout} )); while :; do raw=$(${served}); have=$(printf '%s' "$raw" | tr -d '\\r\\n'); [ "$have" = "$want" ] && ${at.settled ? `( ${at.settled} ) >/dev/null 2>&1 &&` : ''} { echo served; exit 0; }; ` +
    `[ -n "$CHECK" ] && { echo "presents ${shown}"; exit 1; }; [ "$(date +%s)" -ge "$end" ] && { echo "presents ${shown}"; exit 1; }; sleep 0.5; done`;
  return {
    module: 'wait_for',
    summary: `${at.address}:${at.port} (${at.serverName}) presents certificate ${certName}`,
    async run(ctx): Promise<ActionResult> {
      // Only looks (openssl s_client): a probe in both modes; in check mode one look, no waiting.
      const r = await ctx.probe(`${ctx.check ? 'CHECK=1' : 'CHECK='}; ${cmd}`, { timeout: timeout + 30 });
      if (r.code === 0) return { changed: false, msg: 'the service presents the current certificate' };
      // check-mode exception: the certificate or restart (earlier tasks) were not applied: not a failure.
      if (ctx.check) return { changed: false, msg: `not presented (check mode): ${r.stdout.trim()}` };
      throw new TaskError(`${at.address}:${at.port} (${at.serverName}) does not present certificate ${certName} within ${timeout}s: ${r.stdout.trim()}`, { stderr: r.stderr });
    },
  };
}

/** The tasks that keep one certificate issued and renewed; task names are unique per certName. */
export function certificateTasks<V extends CertRoleVars>(spec: CertificateSpec<V>): Task<V>[] {
  return [
    task<V>({ name: `certbot (${spec.certName})`, tags: spec.tags, do: apt({ name: ['certbot', 'openssl', 'ca-certificates'] }) }),
    task<V>({
      name: `certificate ${spec.certName}`,
      tags: spec.tags,
      notify: spec.notify,
      do: (env) =>
        acmeCert({
          certName: spec.certName,
          names: spec.names(env),
          directory: env.vars.certs.directory,
          challenge: spec.challenge,
          renewBefore: env.vars.certs.renewBefore,
          deployHook: spec.deployHook,
          email: env.vars.certs.email,
        }),
    }),
    task<V>({ name: `certbot renewal timer (${spec.certName})`, tags: spec.tags, do: systemd({ name: 'certbot.timer', state: 'started', enabled: true }) }),
  ];
}
