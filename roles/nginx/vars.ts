// nginx's typed vars and production defaults (docs/ARCHITECTURE.md: LXC 101, the public gateway).

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
