// The stacks' lab tests (sync.test.ts, stack-owners.test.ts): commands on the VMs over plain ssh
// (independent of the runner under test), `npx phoenix ...` as a user runs it, the Portainer
// API as a client sees it, and the test setup that removes the stacks.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { LAB_ROOT, labInventory, readLabState } from '../../lab/inventory.ts';
import { secret, type Secret } from '../../runner/index.ts';
import { PortainerClient } from '../../roles/portainer/client.ts';
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const DOMAIN = 'internal.thinkheads.ai';
export const API = `https://vm1001.${DOMAIN}:9443`;
export const lab = readLabState();
// The lab's own secrets (made on first use by the lab inventory, .lab/*, 0600).
export const labVars = labInventory().vars!;
export const PASSWORD = (labVars.portainer!.adminPassword as Secret).reveal();
export const QDRANT_KEY = (labVars.qdrant!.apiKey as Secret).reveal();

/** A command as root on a guest over plain ssh, host key verified; independent of the runner. */
export function ssh(guest: string, cmd: string): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn('ssh', ['-i', lab.key, '-o', `UserKnownHostsFile=${lab.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', `${lab.user}@${lab.hosts[guest]!.address}`, 'sudo sh -s'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => resolve({ code: code ?? -1, out, err }));
    p.stdin.end(cmd);
  });
}
/** The lab's secret values replaced by *** (a failing command's script holds them: the test's own output is a log too). */
export const hideSecrets = (text: string) => [PASSWORD, QDRANT_KEY].reduce((t, s) => t.split(s).join('***'), text);
export const manager = async (cmd: string) => {
  const r = await ssh('vm1001', cmd);
  if (r.code !== 0) throw new Error(hideSecrets(`vm1001: ${cmd}: exit ${r.code}: ${r.err}`));
  return r.out.trim();
};

/** `npx phoenix ...`, as a user runs it from the checkout (the bin registers tsx itself). */
export function phoenix(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
    delete env.NODE_OPTIONS;
    const p = spawn('npx', ['--no-install', 'phoenix', ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('close', (code) => resolve({ code: code ?? -1, out }));
  });
}

/** Samples the process lists of both VMs while `during` runs. */
export async function watchProcesses<T>(during: () => Promise<T>): Promise<{ result: T; ps: string }> {
  // ssh gives the remote command no SIGHUP without a terminal, and killing the client did not end
  // the loop either (orphaned loops were found ps-ing every 0.2 s half an hour later, skewing the
  // bench): it is killed by name afterwards, and bounded (15 min) in case that fails too.
  const id = `phx-watch-${randomBytes(4).toString('hex')}`;
  const loop = `: ${id}; i=0; while [ $i -lt 4500 ] && ps -eo args; do sleep 0.2; i=$((i+1)); done`;
  const kids = ['vm1001', 'vm1002'].map((g) =>
    spawn('ssh', ['-i', lab.key, '-o', `UserKnownHostsFile=${lab.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', `${lab.user}@${lab.hosts[g]!.address}`, loop], { stdio: ['ignore', 'pipe', 'ignore'] }),
  );
  let ps = '';
  for (const k of kids) k.stdout!.on('data', (d) => (ps += d));
  try {
    return { result: await during(), ps };
  } finally {
    for (const k of kids) k.kill();
    // The id is in the loop shell's arguments only (ssh() sends its script on stdin); say so if the loops may have survived.
    for (const [g, r] of await Promise.all(['vm1001', 'vm1002'].map(async (g) => [g, await ssh(g, `pkill -f '${id}'; ! pgrep -f '${id}' >/dev/null`)] as const)))
      if (r.code !== 0) console.warn(`watchProcesses: the ps loop on ${g} may still run (${id}): ${r.err.trim()}`);
  }
}

export const leaks = (text: string) =>
  [PASSWORD, QDRANT_KEY, Buffer.from(PASSWORD).toString('base64'), Buffer.from(QDRANT_KEY).toString('base64')].filter((s) => text.includes(s)).length +
  (/eyJhbGciOi/.test(text) ? 1 : 0); // a JWT header

export interface Report {
  plays: { hosts: Record<string, { tasks: { task: string; module: string; status: string; msg?: string; handler: boolean }[] }> }[];
  recap: Record<string, { changed: number; failed: number }>;
}
export const report = (f: string) => JSON.parse(readFileSync(f, 'utf8')) as Report;
export const tasks = (r: Report) => r.plays.flatMap((p) => p.hosts.vm1001?.tasks ?? []);
export const msgOf = (r: Report, name: string) => tasks(r).find((t) => t.task === name)?.msg ?? '';

export const client = () => new PortainerClient({ url: API, username: 'admin', password: secret(PASSWORD, 'lab portainer'), ca: LAB_ROOT, resolve: { [`vm1001.${DOMAIN}`]: lab.hosts.vm1001!.address } });


export const formed = async () =>
  (await ssh('vm1001', `docker info -f '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}'; docker node ls --format '{{.Hostname}} {{.Status}}' 2>/dev/null | sort`)).out.trim() ===
  'active true\nvm1001 Ready\nvm1002 Ready';

/** Test setup: both stacks gone from the swarm (waited for); with `portainerDb`, Portainer's database too. */
export const removeStacks = (portainerDb: boolean) =>
  manager(`docker stack rm portainer_service qdrant_service >/dev/null 2>&1; docker rm -f portainer-bootstrap >/dev/null 2>&1
    # Up to 3 min: an overlay network can outlive its stack's containers by over a minute (CI on 2026-12-03 gave up at 60 s).
    for i in $(seq 1 360); do
      left="$(docker service ls -q --filter label=com.docker.stack.namespace=portainer_service; docker service ls -q --filter label=com.docker.stack.namespace=qdrant_service
              docker ps -aq --filter label=com.docker.stack.namespace=portainer_service; docker ps -aq --filter label=com.docker.stack.namespace=qdrant_service
              docker network ls -q --filter label=com.docker.stack.namespace=portainer_service)"
      [ -z "$left" ] && break; sleep 0.5
    done
    [ -z "$left" ] || { echo "stacks not gone: $left" >&2; exit 1; }
    ${portainerDb ? 'docker volume rm portainer_data >/dev/null 2>&1 || true; docker volume ls -q | grep -qx portainer_data && exit 1 || true' : 'true'}`);

/** Does the Portainer API (the stand-in) know this stack, in this swarm? null: no Portainer answers. */
export async function portainerKnows(name: string): Promise<boolean | null> {
  try {
    const c = client();
    const eps = await c.endpoints();
    return (await c.stacks({ SwarmID: await c.swarmId(eps[0]!.Id), EndpointID: eps[0]!.Id })).some((x) => x.Name === name);
  } catch {
    return null;
  }
}

