// Shared pieces of the integration tests: real sshd hosts, an inventory for them, a
// snapshot of a host's files to prove --check changed nothing, and captured output.
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { startSshd, type SshdLab } from '../harness/sshd.ts';
import type { Inventory } from '../../runner/index.ts';

export interface TestVars {
  root: string;
  port?: number;
  fail?: boolean;
}

export async function hosts(count: number): Promise<SshdLab> {
  return startSshd({ count });
}

/** hostN -> the Nth sshd, connecting as the non-root test user, sudo for root. */
export function inventoryFor(lab: SshdLab, extra: Record<string, Partial<Inventory<TestVars>['hosts'][string]>> = {}): Inventory<TestVars> {
  const hostsOut: Inventory<TestVars>['hosts'] = {};
  lab.hosts.forEach((h, i) => {
    const name = `host${i}`;
    hostsOut[name] = {
      address: h.address,
      port: h.port,
      user: h.user,
      key: h.key,
      become: true,
      groups: ['test'],
      ...extra[name],
      vars: { root: h.root, ...(extra[name]?.vars ?? {}) },
    };
  });
  return { knownHosts: lab.knownHosts, hosts: hostsOut };
}

export type Snapshot = Record<string, string>;

/** Every path under dir with its type, mode, owner and content hash. */
export function snapshot(dir: string): Snapshot {
  const out: Snapshot = {};
  const walk = (p: string) => {
    const st = lstatSync(p);
    const base = `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
    if (st.isSymbolicLink()) out[p] = `link ${base} -> ${readlinkSync(p)}`;
    else if (st.isDirectory()) {
      out[p] = `dir ${base}`;
      for (const e of readdirSync(p).sort()) walk(join(p, e));
    } else out[p] = `file ${base} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
  };
  walk(dir);
  return out;
}

export function capture() {
  const chunks: string[] = [];
  return { out: { write: (s: string) => void chunks.push(s) }, text: () => chunks.join('') };
}
