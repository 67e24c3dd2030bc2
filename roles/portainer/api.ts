// The stacks through the Portainer API: the tasks `phoenix sync` runs (playbooks/sync.ts), and
// site's portainer and qdrant roles unless the inventory says `swarm.deployStacksWith: 'docker'`
// (one owner per stack: Portainer cannot adopt a stack deployed outside it, so site and sync use
// the same tasks and agree). Each stack is one task whose requests go from this machine to the
// Portainer API (node:https, TLS verified against the step-ca root); health checks run on the manager.
import { handler, output, task, type Task, type TaskEnv } from '../../runner/index.ts';
import { syncStack, type SyncApiOptions, type SyncStackSpec } from './sync.ts';
import { portainerBootstrap, portainerHandover, type BootstrapData, type OneOffContainer } from './bootstrap.ts';
import type { BaseVars } from '../base-vars.ts';
import type { StepCaVars } from '../step-ca/vars.ts';
import type { SwarmVars } from '../swarm/vars.ts';
import type { PortainerVars } from './vars.ts';
import { renderStack } from '../../stacks/plan.ts';
import { portainerStack } from '../../stacks/portainer.ts';
import { resolveSecret, type SecretRef, type StackDefinition } from '../../stacks/types.ts';

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

/** What the Portainer API tasks read: Portainer's vars, the swarm's (manager, advertise addresses), the step-ca root and the base. */
export type SyncVars = PortainerVars & PortainerApiVars & Pick<SwarmVars, 'swarm'> & Pick<StepCaVars, 'stepCa'> & BaseVars;

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
  return renderStack(def);
}

/** What the bootstrap task hands the stack tasks of its play: the API to use (the one-off's while it is on). */
export const portainerApi = output<BootstrapData>('portainer API');

/**
 * The API URL for the stack tasks: the one-off's while a bootstrap is on, else the normal one.
 * `afterBootstrap`: the task runs in the bootstrap's play and lists `portainerApi` in `uses`.
 */
function apiFor(env: TaskEnv<SyncVars>, afterBootstrap: boolean): { api: SyncApiOptions; readinessTimeout?: number; boot?: BootstrapData } {
  const { readinessTimeout, ...api } = apiOptions(env.vars);
  // Skipped (site with deployStacksWith 'docker'): no value, the normal API.
  const boot = afterBootstrap ? env.result(portainerApi).data : undefined;
  return { api: boot ? { ...api, url: boot.url } : api, readinessTimeout, boot };
}

/** The Portainer API call that keeps one stack in shape (sync's task; site's unless deployStacksWith is 'docker'). */
export function stackAction<V extends SyncVars>(name: 'portainer' | 'qdrant', define: (vars: V) => StackDefinition, afterBootstrap = false) {
  return (env: TaskEnv<V>) => {
    const { api, readinessTimeout, boot } = apiFor(env, afterBootstrap);
    const own = name === 'portainer';
    return syncStack({
      api,
      stack: syncSpec(define(env.vars)),
      readinessTimeout,
      noApiYet: boot?.wouldBootstrap,
      // Portainer's own stack becomes ready once the one-off has handed over (handler below).
      readiness: own && boot?.bootstrapped ? 'later' : 'now',
      // Never Portainer's own stack through the Portainer that runs in it: its hand-over is the
      // bootstrap task's (a one-off Portainer), and the stack task only migrates through that one-off.
      migrate: own && !boot?.bootstrapped ? undefined : migrateOf(env.vars),
    });
  };
}

/** `afterBootstrap`: in the bootstrap task's play, the stack goes through the one-off while it is on. */
export function stackTask<V extends SyncVars>(name: 'portainer' | 'qdrant', define: (vars: V) => StackDefinition, afterBootstrap = false) {
  return task<V>({
    name: `${name} stack via the Portainer API`,
    ...(afterBootstrap ? { uses: [portainerApi] } : {}),
    do: stackAction(name, define, afterBootstrap),
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

export const handover = handler<SyncVars>('hand over to the stack\'s own Portainer', ({ vars }) => {
  const { readinessTimeout, ...api } = apiOptions(vars);
  return portainerHandover({ api, plan: syncSpec(portainerStack(vars)), oneOff: oneOffFor(vars).name, timeout: readinessTimeout });
});


type When = (env: TaskEnv<SyncVars>) => boolean;

/** Site's stack tasks go through the Portainer API unless swarm.deployStacksWith is 'docker'. */
export const stacksViaPortainer: When = ({ vars }) => (vars.swarm.deployStacksWith ?? 'portainer') === 'portainer';

/** swarm.migrateDockerStacks: a stack deployed with docker is handed to Portainer (docs/stacks.md). */
const migrateOf = (vars: SyncVars) => (vars.swarm.migrateDockerStacks ? { stateDir: vars.swarm.stackDir } : undefined);

/**
 * The one-off Portainer that creates Portainer's own stack on a fresh swarm (then hands over to
 * it: handler). Sync always runs it; site unless swarm.deployStacksWith is 'docker' (when).
 */
export function bootstrapTask(when?: When): Task<SyncVars> {
  return task<SyncVars>({
    name: 'portainer API (a one-off Portainer on a fresh swarm)',
    register: portainerApi,
    notify: [handover],
    when,
    do: ({ vars }) => {
      const { readinessTimeout, ...api } = apiOptions(vars);
      const oneOff = oneOffFor(vars);
      const u = new URL(api.url);
      u.port = String(oneOff.publish.host);
      return portainerBootstrap({ api, bootstrapUrl: u.origin, stack: vars.portainer.stack, oneOff, timeout: readinessTimeout, migrate: migrateOf(vars) });
    },
  });
}
