// Certificates from step-ca for any guest's service, one mechanism for all: certbot from Debian
// over ACME http-01 against step-ca's ACME directory (roles/certs/vars.ts). A role that serves
// TLS adds these tasks; the key is made on its host, renewal runs from certbot's own timer, and
// a run re-issues only when less than a third of the lifetime is left.
import { acmeCert, apt, systemd, task, type AcmeCertOptions, type Handler, type Task, type TaskEnv } from '../../runner/index.ts';
import type { PhoenixVars } from '../../inventory.ts';

export { liveDir } from '../../runner/index.ts';

export interface CertificateSpec<V extends PhoenixVars> {
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

/** The tasks that keep one certificate issued and renewed; task names are unique per certName. */
export function certificateTasks<V extends PhoenixVars>(spec: CertificateSpec<V>): Task<V>[] {
  return [
    task<V>({ name: `certbot (${spec.certName})`, tags: spec.tags, do: apt({ name: ['certbot', 'openssl', 'ca-certificates'] }) }),
    task<V>({
      name: `certificate ${spec.certName}`,
      tags: spec.tags,
      notify: spec.notify,
      register: `cert:${spec.certName}`,
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
