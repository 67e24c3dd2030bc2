// ca.json from typed vars: the shape `step ca init` writes (docs/reference/step-ca-notes.md),
// standalone, provisioners in the file, badgerv2 database, TLS 1.2+.
import type { StepCaVars } from './vars.ts';

export const STEP_DIR = '/etc/step-ca';
export const PATHS = {
  root: `${STEP_DIR}/certs/root_ca.crt`,
  intermediate: `${STEP_DIR}/certs/intermediate_ca.crt`,
  rootKey: `${STEP_DIR}/secrets/root_ca_key`,
  intermediateKey: `${STEP_DIR}/secrets/intermediate_ca_key`,
  password: `${STEP_DIR}/secrets/password`,
  config: `${STEP_DIR}/config/ca.json`,
  db: `${STEP_DIR}/db`,
};

const DURATION = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;

/** Errors that name the inventory field; step-ca would only say so when it starts. */
export function checkStepCaVars(v: StepCaVars['stepCa']): string[] {
  const errs: string[] = [];
  if (!Number.isInteger(v.port) || v.port < 1 || v.port > 65535) errs.push(`stepCa.port: ${v.port} is not a TCP port`);
  const names = new Set<string>();
  v.provisioners.forEach((p, i) => {
    const f = `stepCa.provisioners[${i}]`;
    if (!/^[A-Za-z0-9._-]+$/.test(p.name)) errs.push(`${f}.name: "${p.name}" must be a URL path segment`);
    if (names.has(p.name)) errs.push(`${f}.name: "${p.name}" is used twice`);
    names.add(p.name);
    for (const [k, d] of Object.entries(p.claims)) if (!DURATION.test(d)) errs.push(`${f}.claims.${k}: "${d}" is not a Go duration such as "2160h"`);
    if (p.extKeyUsage && (!p.extKeyUsage.length || p.extKeyUsage.some((u) => u !== 'serverAuth' && u !== 'clientAuth')))
      errs.push(`${f}.extKeyUsage: ${JSON.stringify(p.extKeyUsage)} must be a non-empty list of "serverAuth", "clientAuth"`);
  });
  if (!names.has(v.acmeProvisioner)) errs.push(`stepCa.acmeProvisioner: no provisioner is named "${v.acmeProvisioner}"`);
  if (!(v.rootDays > v.intermediateDays && v.intermediateDays > 0)) errs.push(`stepCa.intermediateDays: must be > 0 and less than stepCa.rootDays`);
  return errs;
}

/**
 * The x509 template of an ACME provisioner: step-ca's DefaultLeafTemplate (go.step.sm/crypto
 * x509util/templates.go, step-ca 0.19) with the extended key usages the provisioner asks for
 * (serverAuth only unless it says otherwise).
 */
export function leafTemplate(eku: string[] = ['serverAuth']): string {
  return [
    '{',
    '\t"subject": {{ toJson .Subject }},',
    '\t"sans": {{ toJson .SANs }},',
    '{{- if typeIs "*rsa.PublicKey" .Insecure.CR.PublicKey }}',
    '\t"keyUsage": ["keyEncipherment", "digitalSignature"],',
    '{{- else }}',
    '\t"keyUsage": ["digitalSignature"],',
    '{{- end }}',
    `\t"extKeyUsage": ${JSON.stringify(eku)}`,
    '}',
  ].join('\n');
}

export interface CaJsonInput {
  vars: StepCaVars['stepCa'];
  /** ca.<domain>, the CA's address, and the extra names. */
  dnsNames: string[];
  /** Override the listen address and database (the trial run before a change goes live). */
  address?: string;
  db?: string;
  /** Override the intermediate key (the scratch run of a key password rotation). */
  key?: string;
}

export function caJson(i: CaJsonInput): string {
  const cfg = {
    root: PATHS.root,
    federatedRoots: null,
    crt: PATHS.intermediate,
    key: i.key ?? PATHS.intermediateKey,
    address: i.address ?? `:${i.vars.port}`,
    insecureAddress: '',
    dnsNames: [...new Set(i.dnsNames)],
    logger: { format: 'text' },
    db: { type: 'badgerv2', dataSource: i.db ?? PATHS.db, badgerFileLoadingMode: '' },
    authority: {
      provisioners: i.vars.provisioners.map((p) => ({
        type: p.type,
        name: p.name,
        ...(p.forceCN ? { forceCN: true } : {}),
        ...(p.challenges ? { challenges: p.challenges } : {}),
        claims: p.claims,
        options: { x509: { template: leafTemplate(p.extKeyUsage) } },
      })),
    },
    tls: {
      cipherSuites: ['TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256', 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256'],
      minVersion: 1.2,
      maxVersion: 1.3,
      renegotiation: false,
    },
  };
  return `${JSON.stringify(cfg, null, '\t')}\n`;
}
