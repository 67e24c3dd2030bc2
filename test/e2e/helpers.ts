// Shared pieces of the lab (e2e) tests: quiet output, commands on guests through the runner,
// HTTPS requests from this machine with the exported step-ca root, and guest snapshots that
// prove a --check run changed nothing.
import { spawn, spawnSync } from 'node:child_process';
import type { Inventory, RunResult } from '../../runner/index.ts';
import { LAB_ROOT, labInventory, readLabState } from '../../lab/inventory.ts';
import type { PhoenixVars } from '../../inventory.ts';

export const GUESTS = ['lxc101', 'lxc102', 'lxc103', 'vm1001', 'vm1002'];
export const DOMAIN = 'internal.thinkheads.ai';

export const quiet = () => {
  const chunks: string[] = [];
  return { out: { write: (s: string) => void chunks.push(s) }, text: () => chunks.join('') };
};

/**
 * A read through the swarm's routing mesh, retried for up to 30 s while the answer is a transient
 * network failure (curl exit 7, 35, 52, 56, 92: refused, TLS cut, empty reply, reset, HTTP/2 stream
 * reset) or no JSON at all, as a user would retry. A wrong answer is never retried.
 */
export async function retryRead<T>(read: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await read();
    } catch (e) {
      if (i >= 15 || !(e instanceof SyntaxError || /exit (7|35|52|56|92):/.test((e as Error).message))) throw e;
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

/** A task's last output line (its msg) in a run's records. */
export const registered = (r: RunResult, host: string, task: string) =>
  (r.plays.flatMap((p) => p.hosts[host]?.tasks ?? []).find((t) => t.task === task)?.msg ?? '').trim();

/**
 * Runs a command as root on guests over plain ssh (host keys checked against the lab's
 * known_hosts), independent of the runner under test; returns stdout per guest.
 */
export async function onGuests(guests: string | string[], cmd: string): Promise<Record<string, string>> {
  const state = readLabState();
  const list = [guests].flat();
  const outs = await Promise.all(
    list.map(
      (g) =>
        new Promise<string>((resolve, reject) => {
          const p = spawn('ssh', ['-i', state.key, '-o', `UserKnownHostsFile=${state.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', `${state.user}@${state.hosts[g]!.address}`, 'sudo sh -s'], { stdio: ['pipe', 'pipe', 'pipe'] });
          let out = '';
          let err = '';
          p.stdout.on('data', (d) => (out += d));
          p.stderr.on('data', (d) => (err += d));
          p.on('close', (code) => (code === 255 ? reject(new Error(`ssh ${g}: ${err}`)) : resolve(out)));
          p.stdin.end(cmd);
        }),
    ),
  );
  return Object.fromEntries(list.map((g, i) => [g, outs[i]!]));
}

export function address(guest: string): string {
  return readLabState().hosts[guest]!.address;
}

/** curl from this machine: the name resolved to a guest, TLS verified with the exported root. */
export function curl(url: string, guest: string, extra: string[] = []): { status: number; body: string; stderr: string; code: number | null } {
  const u = new URL(url);
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  const p = spawnSync('curl', ['-sS', '--max-time', '10', '--cacert', LAB_ROOT, '--resolve', `${u.hostname}:${port}:${address(guest)}`, '-w', '\n%{http_code}', ...extra, url], { encoding: 'utf8' });
  const i = p.stdout.lastIndexOf('\n');
  return { status: Number(p.stdout.slice(i + 1)), body: p.stdout.slice(0, i), stderr: p.stderr, code: p.status };
}

/**
 * What --check must leave alone on a guest: every file's type, mode, owner and checksum under
 * the paths roles write, the installed packages, running units and the swarm state.
 */
export const SNAPSHOT =
  'for d in /etc /usr/local /var/www /var/lib/phoenix /opt; do [ -e "$d" ] && find "$d" -xdev \\( -type f -o -type l -o -type d \\) ' +
  "-not -path '/etc/ld.so.cache' -printf '%p %y %m %u %g %l\\n' 2>/dev/null; done | sort | sha256sum; " +
  'find /etc /usr/local /var/www -xdev -type f -size -2M -print0 2>/dev/null | sort -z | xargs -0 sha256sum 2>/dev/null | sha256sum; ' +
  "dpkg-query -W -f='${Package} ${Status}\\n' | sha256sum; systemctl list-units --type=service --state=running --no-legend --plain | awk '{print $1}' | sort | sha256sum; " +
  "(docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.NodeID}}' 2>/dev/null || echo no-docker)";

/** Plain objects and arrays copied, anything else (a Secret) kept as it is. */
function clone<T>(v: T): T {
  if (Array.isArray(v)) return v.map(clone) as T;
  if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype)
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, clone(x)])) as T;
  return v;
}

/** The lab inventory with some vars changed. */
export function labWith(change: (v: PhoenixVars) => void): Inventory<PhoenixVars> {
  const inv = labInventory();
  const vars = clone(inv.vars) as PhoenixVars;
  change(vars);
  return { ...inv, vars };
}
