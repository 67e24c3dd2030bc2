// Qdrant's certificate on the node that runs it (issue 16, item 3): step-ca over ACME http-01,
// certbot answering the challenge itself on :80 of the worker (nothing else listens there). The
// qdrant stack bind-mounts /etc/letsencrypt read-only and points Qdrant's own TLS settings at the
// lineage; Qdrant re-reads it every qdrant.tls.certTtl seconds, so certbot's renewals reach it
// without a hook.
import { role } from '../../runner/index.ts';
import type { BaseVars } from '../base-vars.ts';
import type { QdrantVars } from '../qdrant/vars.ts';
import type { CertVars } from './vars.ts';
import { QDRANT_CERT, qdrantTlsName } from '../../stacks/qdrant.ts';
import { certificateTasks } from './index.ts';

/** What Qdrant's certificate reads: the certificate settings, qdrant.tls and the base. */
export type QdrantCertRoleVars = CertVars & Pick<QdrantVars, 'qdrant'> & BaseVars;
type V = QdrantCertRoleVars;

export const qdrantCertificate = role<V>({
  name: 'certs',
  tags: ['qdrant-cert'],
  // Nothing to do when qdrant.tls.enabled is false.
  tasks: certificateTasks<V>({
    certName: QDRANT_CERT,
    names: ({ vars, host }) => [qdrantTlsName(host.name, vars.domain)],
    challenge: { standalone: { port: 80 } },
  }).map((t) => ({ ...t, when: ({ vars }) => vars.qdrant.tls.enabled })),
});
