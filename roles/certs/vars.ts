// Certificates from step-ca for any guest's service: one mechanism (runner/modules/acme_cert.ts,
// certbot from Debian over ACME http-01). These vars say where the CA is and how long to keep.

export interface CertVars {
  certs: {
    /** step-ca's ACME directory: https://ca.<domain>:<port>/acme/<provisioner>/directory. */
    directory: string;
    /** Renew when less than this fraction of the lifetime is left (1/3: certbot's own rule). */
    renewBefore: number;
    /** Contact address for the ACME account (optional). */
    email?: string;
  };
}

export function certDefaults(domain: string, caPort: number, provisioner: string): CertVars {
  return { certs: { directory: `https://ca.${domain}:${caPort}/acme/${provisioner}/directory`, renewBefore: 1 / 3 } };
}

/** What a role with certificateTasks reads of a host's vars: checked at planning time for every host it runs on. */
export const certsVarsSchema = { type: 'object', required: ['directory', 'renewBefore'], properties: { directory: { type: 'string', minLength: 1 }, renewBefore: { type: 'number', exclusiveMinimum: 0 }, email: { type: 'string' } } };
