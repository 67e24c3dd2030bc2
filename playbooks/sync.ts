// `phoenix sync [all|portainer|qdrant]`: the swarm stacks through the Portainer API.
//   npx zx playbooks/sync.ts all --inventory lab [--check] [--diff] [--json FILE] [--plain] ...
//   npx phoenix sync qdrant --inventory lab
// One play on the Portainer host (VM 1001, the swarm manager): each stack is one task whose
// requests go from this machine to the Portainer API (axios, TLS verified against the step-ca
// root); the product health checks run on the manager. Flags, output and exit codes are those
// of every playbook (runner/cli.ts); the target is the only extra argument.
import { handler, isMain, main, play, playbook, role, task, EXIT, type Role, type TaskEnv } from '../runner/index.ts';
import { scriptArgs } from '../runner/cli.ts';
import { syncStack, type SyncApiOptions, type SyncStackSpec } from '../runner/portainer/sync.ts';
import { portainerBootstrap, portainerHandover, type BootstrapData, type OneOffContainer } from '../runner/portainer/bootstrap.ts';
import type { PhoenixVars } from '../inventory.ts';
import { renderCompose, validateCompose } from '../stacks/compose.ts';
import { portainerStack } from '../stacks/portainer.ts';
import { qdrantStack } from '../stacks/qdrant.ts';
import { resolveSecret, type SecretRef, type StackDefinition } from '../stacks/types.ts';

/** How sync reaches the Portainer API; every field has a default from the other vars. */
export interface PortainerApiVars {
  portainerApi?: {
    /** Default: https://<portainer.tls.names[0]>:<portainer.httpsPort>. */
    url?: string;
    /** Port of the one-off Portainer that creates the stacks on a fresh swarm (default httpsPort + 1). */
    bootstrapPort?: number;
    /** Default: admin (the user --admin-password-file creates). */
    username?: string;
    /** Default: portainer.adminPassword. */
    password?: SecretRef;
    /** PEM file of the CA to verify the server against. Default: stepCa.exportRoot (the step-ca root). */
    ca?: string;
    /** Host name -> address for the URL (no DNS needed here). Default: the URL's host -> the manager's advertise address. */
    resolve?: Record<string, string>;
    /** The environment's name. Default: the only Docker environment. */
    endpoint?: string;
    /** Seconds to wait for a stack's tasks and health (default 180). */
    readinessTimeout?: number;
  };
}

type SyncVars = PhoenixVars & PortainerApiVars;

export const TARGETS = ['all', 'portainer', 'qdrant'] as const;
export type Target = (typeof TARGETS)[number];

export function apiOptions(vars: SyncVars): SyncApiOptions & { readinessTimeout?: number } {
  const a = vars.portainerApi ?? {};
  const manager = vars.swarm.manager;
  // The name the server's step-ca certificate carries (roles/portainer), reached on the manager.
  const host = vars.portainer.tls.names[0] ?? `${manager}.${vars.domain}`;
  const address = vars.swarm.advertise[manager];
  return {
    url: a.url ?? `https://${host}:${vars.portainer.httpsPort}`,
    username: a.username ?? 'admin',
    password: resolveSecret(a.password ?? vars.portainer.adminPassword, a.password ? 'portainerApi.password' : 'portainer.adminPassword'),
    ca: a.ca ?? vars.stepCa.exportRoot,
    resolve: a.resolve ?? (address ? { [host]: address } : undefined),
    endpoint: a.endpoint,
    readinessTimeout: a.readinessTimeout,
  };
}

/** A stack definition as sync sends it: validated against the compose spec, then rendered. */
export function syncSpec(def: StackDefinition): SyncStackSpec {
  validateCompose(def.compose, `stack ${def.name}`);
  return { name: def.name, content: renderCompose(def.compose), env: def.env, secrets: def.secrets, health: def.health };
}

const API = 'portainer api';

/** The API URL for the stack tasks: the one-off's while a bootstrap is on, else the normal one. */
function apiFor(env: TaskEnv<SyncVars>): { api: SyncApiOptions; readinessTimeout?: number; boot?: BootstrapData } {
  const { readinessTimeout, ...api } = apiOptions(env.vars);
  const boot = (env.registered[API] as { data?: BootstrapData } | undefined)?.data;
  return { api: boot ? { ...api, url: boot.url } : api, readinessTimeout, boot };
}

function stackTask(name: 'portainer' | 'qdrant', define: (vars: SyncVars) => StackDefinition, notify?: ReturnType<typeof handler<SyncVars>>[]) {
  return task<SyncVars>({
    name: `${name} stack via the Portainer API`,
    notify,
    do: (env) => {
      const { api, readinessTimeout, boot } = apiFor(env);
      const own = name === 'portainer';
      return syncStack({
        api,
        stack: syncSpec(define(env.vars)),
        readinessTimeout,
        noApiYet: boot?.wouldBootstrap,
        // Portainer's own stack becomes ready once the one-off has handed over (handler below).
        readiness: own && boot?.bootstrapped ? 'later' : 'now',
      });
    },
  });
}

/** The one-off Portainer: the stack's own server, run once with `docker run` (bootstrap.ts). */
export function oneOffFor(vars: SyncVars): OneOffContainer {
  const def = portainerStack(vars);
  const svc = def.compose.services.portainer;
  if (!svc) throw new Error(`stack ${def.name}: no "portainer" service`);
  const https = (svc.ports ?? []).find((p) => p.published === vars.portainer.httpsPort) ?? { target: 9443 };
  return {
    name: 'portainer-bootstrap',
    image: svc.image,
    args: [...(svc.command ?? [])],
    mounts: (svc.volumes ?? []).map((v) =>
      v.type === 'volume' ? { source: def.compose.volumes?.[v.source]?.name ?? `${def.name}_${v.source}`, target: v.target, readOnly: v.read_only } : { source: v.source, target: v.target, readOnly: v.read_only },
    ),
    files: (svc.secrets ?? []).map((ref) => {
      const s = def.secrets?.[ref.source];
      if (!s) throw new Error(`stack ${def.name}: service portainer uses secret "${ref.source}", which the stack does not define`);
      return { target: ref.target?.startsWith('/') ? ref.target : `/run/secrets/${ref.target ?? ref.source}`, content: s.value };
    }),
    publish: { host: vars.portainerApi?.bootstrapPort ?? vars.portainer.httpsPort + 1, container: https.target },
  };
}

const handover = handler<SyncVars>('hand over to the stack\'s own Portainer', ({ vars }) => {
  const { readinessTimeout, ...api } = apiOptions(vars);
  return portainerHandover({ api, stack: vars.portainer.stack, oneOff: oneOffFor(vars).name, health: portainerStack(vars).health, timeout: readinessTimeout });
});

export const portainerRole = role<SyncVars>({
  name: 'portainer',
  tags: ['sync'],
  tasks: [
    task<SyncVars>({
      name: 'portainer API (a one-off Portainer on a fresh swarm)',
      register: API,
      notify: [handover],
      do: ({ vars }) => {
        const { readinessTimeout, ...api } = apiOptions(vars);
        const oneOff = oneOffFor(vars);
        const u = new URL(api.url);
        u.port = String(oneOff.publish.host);
        return portainerBootstrap({ api, bootstrapUrl: u.origin, stack: vars.portainer.stack, oneOff, timeout: readinessTimeout });
      },
    }),
    stackTask('portainer', (v) => portainerStack(v)),
  ],
});

export const qdrantRole: Role<SyncVars> = role<SyncVars>({ name: 'qdrant', tags: ['sync'], tasks: [stackTask('qdrant', (v) => qdrantStack(v))] });

export function syncPlaybook(target: Target) {
  const roles = target === 'all' ? [portainerRole, qdrantRole] : target === 'portainer' ? [portainerRole] : [qdrantRole];
  // Portainer first: its own stack, then what it manages (docs/ARCHITECTURE.md, order of a run).
  return playbook<SyncVars>(`sync ${target}`, [play<SyncVars>({ name: `sync ${target}`, hosts: 'portainer', roles })]);
}

/** Flags of runner/cli.ts that take a value (so a value is not mistaken for the target). */
const VALUE_FLAGS = new Set(['-i', '--inventory', '-l', '--limit', '-t', '--tags', '--skip-tags', '-f', '--forks', '--json', '--known-hosts']);

/** Splits `[target] [flags]` (the target may come anywhere); throws a usage message. */
export function splitTarget(args: string[]): { target: Target; rest: string[] } {
  const rest: string[] = [];
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (a.startsWith('-')) {
      rest.push(a);
      if (VALUE_FLAGS.has(a) && i + 1 < args.length) rest.push(args[++i]!);
      continue;
    }
    positional.push(a);
  }
  if (positional.length > 1) throw new Error(`one target expected (all, portainer or qdrant), got: ${positional.join(' ')}`);
  const t = positional[0] ?? 'all';
  if (!(TARGETS as readonly string[]).includes(t)) throw new Error(`unknown target "${t}": expected all, portainer or qdrant`);
  return { target: t as Target, rest };
}

export const SYNC_HELP = `usage: phoenix sync [all|portainer|qdrant] [options]     (npx zx playbooks/sync.ts ...)

Deploys or updates the swarm stacks through the Portainer API: finds the stack by name, updates
it only when its stack file or Env differs, creates it when absent, waits until every task runs
and the product answers. Default target: all. --check sends only reads; --diff shows the compose
diff. The options are those of every playbook:
`;

export async function syncMain(args = scriptArgs()): Promise<number> {
  let split;
  try {
    split = splitTarget(args);
  } catch (e) {
    process.stderr.write(`phoenix sync: ${(e as Error).message}\nrun with --help for the options\n`);
    return (process.exitCode = EXIT.USAGE);
  }
  if (split.rest.includes('--help') || split.rest.includes('-h')) process.stdout.write(SYNC_HELP);
  return main(syncPlaybook(split.target), split.rest);
}

if (isMain(import.meta.url)) await syncMain();
