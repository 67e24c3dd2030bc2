// The lab as an inventory: the Phoenix topology of ../inventory.ts with the lab's addresses,
// key and known_hosts, read from .lab/lab.json (written by `npm run lab:up`).
// Used as `npx zx playbooks/site.ts --inventory lab`.
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { InventoryError, type Inventory, type HostSpec } from '../runner/index.ts';
import { phoenix, type PhoenixVars } from '../inventory.ts';

export const LAB_STATE = fileURLToPath(new URL('../.lab/lab.json', import.meta.url));

export interface LabState {
  user: string;
  key: string;
  knownHosts: string;
  hosts: Record<string, { address: string; port: number }>;
  stepCa: { binary: string; sha256: string } | null;
  standins?: { images: string[] };
}

export function readLabState(): LabState {
  if (!existsSync(LAB_STATE)) throw new InventoryError(`lab inventory: ${LAB_STATE} not found; run \`npm run lab:up\` first`);
  return JSON.parse(readFileSync(LAB_STATE, 'utf8')) as LabState;
}

export function labInventory(state: LabState = readLabState()): Inventory<PhoenixVars> {
  const addr = (name: string) => {
    const h = state.hosts[name];
    if (!h) throw new InventoryError(`lab inventory: ${LAB_STATE} has no host "${name}"`);
    return h.address;
  };
  const hosts: Record<string, HostSpec<PhoenixVars>> = {};
  for (const [name, spec] of Object.entries(phoenix.hosts)) {
    if (name === 'proxmox') continue; // the lab machine itself plays the Proxmox host
    const lab = state.hosts[name];
    if (!lab) throw new InventoryError(`lab inventory: ${LAB_STATE} has no host "${name}"`);
    hosts[name] = { ...spec, address: lab.address, port: lab.port, user: state.user, key: state.key, become: true };
  }
  const base = phoenix.vars!;
  return {
    knownHosts: state.knownHosts,
    // Same groups, but no jump host: the lab's bridge is reachable from this machine.
    groups: { ...phoenix.groups, guests: {} },
    vars: {
      ...base,
      gateway: '192.168.201.1',
      topology: {
        stepCa: { address: addr('lxc103'), port: base.topology!.stepCa.port },
        nginx: { address: addr('lxc101') },
        traefik: { ...base.topology!.traefik, address: addr('lxc102') },
        swarmManager: { address: addr('vm1001') },
        swarmWorker: { address: addr('vm1002') },
      },
      nginx: { ...base.nginx!, pageText: `Gateway for ${base.domain} (phoenix lab)` },
      stepCa: {
        ...base.stepCa!,
        source: state.stepCa ? { localPath: state.stepCa.binary, sha256: state.stepCa.sha256 } : base.stepCa!.source,
      },
    },
    hosts,
  };
}

export default labInventory;
