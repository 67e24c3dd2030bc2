// nginx's typed vars and production defaults (docs/ARCHITECTURE.md: LXC 101, the public gateway).

import { needsVars } from '../../runner/vars-schema.ts';
import { certsVarsSchema } from '../certs/vars.ts';

export interface NginxVars {
  nginx: {
    /** Title and text of the gateway's landing page. */
    pageTitle: string;
    pageText: string;
    listenHttp: number;
    listenHttps: number;
    /** Names the gateway's certificate covers and its TLS server answers (FQDNs). */
    serverNames: string[];
    /** Names forwarded to Traefik (the rest get the landing page). */
    proxiedNames: string[];
  };
}

export function nginxDefaults(domain: string): NginxVars {
  return {
    nginx: {
      pageTitle: 'Phoenix Hypervisor',
      pageText: `Gateway for ${domain}`,
      listenHttp: 80,
      listenHttps: 443,
      serverNames: [domain, `portainer.${domain}`, `qdrant.${domain}`],
      proxiedNames: [`portainer.${domain}`, `qdrant.${domain}`],
    },
  };
}
/** What the role reads of a host's vars: checked at planning time for every host it runs on. */
export const nginxVarsSchema = needsVars(
  {
    nginx: {
      required: ['pageTitle', 'pageText', 'listenHttp', 'listenHttps', 'serverNames', 'proxiedNames'],
      properties: {
        pageTitle: { type: 'string' },
        pageText: { type: 'string' },
        listenHttp: { type: 'integer', minimum: 1, maximum: 65535 },
        listenHttps: { type: 'integer', minimum: 1, maximum: 65535 },
        serverNames: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
        proxiedNames: { type: 'array', items: { type: 'string', minLength: 1 } },
      },
    },
    certs: certsVarsSchema,
  },
  { domain: { type: 'string', minLength: 1 } },
);
