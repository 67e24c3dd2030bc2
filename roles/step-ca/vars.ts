// step-ca's typed vars and production defaults (docs/ARCHITECTURE.md: LXC 103, :9000).
import type { BinarySource, Secret } from '../../runner/index.ts';
import { needsVars } from '../../runner/vars-schema.ts';

/** An ACME provisioner in ca.json (step-ca's `authority.provisioners[]`, type "ACME"). */
export interface AcmeProvisioner {
  type: 'ACME';
  /** Also the URL path segment: /acme/<name>/directory. */
  name: string;
  /** Challenge types; step-ca enables http-01, dns-01 and tls-alpn-01 when unset. */
  challenges?: ('http-01' | 'dns-01' | 'tls-alpn-01')[];
  forceCN?: boolean;
  /**
   * Extended key usages of the certificates it issues (its x509 template). step-ca's default
   * template gives every leaf serverAuth and clientAuth; phoenix's default is serverAuth only,
   * so a guest's server certificate is no client certificate anywhere (docs/security.md).
   */
  extKeyUsage?: ('serverAuth' | 'clientAuth')[];
  /** Go durations, e.g. "2160h". step-ca's own default leaf lifetime is 24h: set them. */
  claims: { minTLSCertDuration: string; maxTLSCertDuration: string; defaultTLSCertDuration: string };
}

export interface StepCaVars {
  stepCa: {
    /** The PKI's name: the CN prefix of the root and intermediate. */
    name: string;
    /** Listen port of the HTTPS API and ACME directory. */
    port: number;
    /** Extra DNS names/IPs in the CA's own certificate (ca.<domain> and the address are always in). */
    dnsNames: string[];
    provisioners: AcmeProvisioner[];
    /** The provisioner the guests' certificates come from. */
    acmeProvisioner: string;
    /** Validity of the root and intermediate, in days. */
    rootDays: number;
    intermediateDays: number;
    // No setting for the CA's own TLS certificate (the one :9000 presents): step-ca makes it
    // at start from its intermediate, valid 24 hours, and renews it in memory when a third of
    // that is left (authority.GetTLSCertificate, ca.TLSRenewer; hard-coded in 0.19 and 0.28).
    // Clients verify it with the root, so its short life needs nothing from phoenix.
    /**
     * Encrypts the root and intermediate keys. Unset: a random password is generated on the CA
     * host itself (0600, owned by the step user) and never leaves it.
     */
    keyPassword?: Secret;
    /** Where the step-ca binary comes from: a release tarball (checksummed), or a local build. */
    source: BinarySource;
    /** The root certificate exported to the control machine (never a key). */
    exportRoot: string;
  };
}

export const STEP_CA_VERSION = '0.30.2';

export function stepCaDefaults(exportRoot: string): StepCaVars {
  return {
    stepCa: {
      name: 'Phoenix Internal CA',
      port: 9000,
      dnsNames: ['localhost'],
      provisioners: [
        {
          type: 'ACME',
          name: 'acme',
          challenges: ['http-01'],
          claims: { minTLSCertDuration: '5m', maxTLSCertDuration: '2160h', defaultTLSCertDuration: '2160h' },
        },
      ],
      acmeProvisioner: 'acme',
      rootDays: 3650,
      intermediateDays: 1825,
      // The vendor's release tarball, verified against the release's own checksums file.
      source: {
        url: `https://github.com/smallstep/certificates/releases/download/v${STEP_CA_VERSION}/step-ca_linux_${STEP_CA_VERSION}_amd64.tar.gz`,
        checksumsUrl: `https://github.com/smallstep/certificates/releases/download/v${STEP_CA_VERSION}/checksums.txt`,
        binaryInArchive: 'step-ca',
      },
      exportRoot,
    },
  };
}

/** What the role reads of a host's vars: checked at planning time for every host it runs on. */
export const stepCaVarsSchema = needsVars({ stepCa: { required: ['name', 'port', 'provisioners', 'acmeProvisioner'] } });
