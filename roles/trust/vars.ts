// trust's typed vars: the names every guest must resolve, and where the root goes.

import { needsVars } from '../../runner/vars-schema.ts';

export interface TrustVars {
  trust: {
    /** Managed /etc/hosts entries: each address with its names (FQDNs). */
    hosts: { address: string; names: string[] }[];
    /** The root's file name in /usr/local/share/ca-certificates/ (must end in .crt). */
    rootName: string;
  };
}

/** The topology fields trust reads to build the names. */
export interface NameTopology {
  stepCa: { address: string };
  nginx: { address: string };
  traefik: { address: string };
  swarmManager: { address: string };
  swarmWorker: { address: string };
}

/**
 * Who answers which name: public service names go to the gateway (nginx, which forwards to
 * Traefik); ca. to step-ca; traefik. to Traefik itself (nginx's upstream, verified by that
 * name); each guest also gets <guest>.<domain>.
 */
export function serviceNames(domain: string, t: NameTopology, guests: Record<string, string>): TrustVars['trust']['hosts'] {
  const by = new Map<string, string[]>();
  const add = (address: string, name: string) => by.set(address, [...(by.get(address) ?? []), name]);
  add(t.stepCa.address, `ca.${domain}`);
  add(t.nginx.address, domain);
  add(t.nginx.address, `portainer.${domain}`);
  add(t.nginx.address, `qdrant.${domain}`);
  add(t.traefik.address, `traefik.${domain}`);
  add(t.swarmWorker.address, `drphoenix-agent.${domain}`);
  for (const [guest, address] of Object.entries(guests)) add(address, `${guest}.${domain}`);
  return [...by].map(([address, names]) => ({ address, names }));
}

export const trustDefaults = (domain: string, t: NameTopology, guests: Record<string, string>): TrustVars => ({
  trust: { hosts: serviceNames(domain, t, guests), rootName: 'phoenix-root-ca.crt' },
});

/** What the role reads of a host's vars: checked at planning time for every host it runs on. */
export const trustVarsSchema = needsVars({ trust: { required: ['hosts', 'rootName'] }, stepCa: {} });
