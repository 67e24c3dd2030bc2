// portainer_stack: the stack plan (stacks/plan.ts) moved by the Portainer API (`phoenix sync`,
// and site's stack tasks unless swarm.deployStacksWith is 'docker').
//   1. authenticate (POST /api/auth; the password is a Secret)
//   2. the environment (GET /api/endpoints) and its swarm ID (GET /api/endpoints/{id}/docker/swarm)
//   3. the stack by name (GET /api/stacks?filters={"SwarmID","EndpointID"})
//   4. update it (PUT /api/stacks/{id}?endpointId=) only when the stack file
//      (GET /api/stacks/{id}/file) or Env differs, or the live services differ from the file
//      (the plan's drift: a service changed or removed by hand); create it when absent
//      (POST /api/stacks/create/swarm/string?endpointId=, with SwarmID)
// Render, drift, secrets, readiness and health are the plan's, as for `docker stack deploy`; the
// plan reads Docker through Portainer's proxy (services, tasks, secrets; secrets created there),
// and removes an old secret with the manager's docker CLI (the proxy is asked for reads and
// secret creation only).
// Check mode sends only GETs and reports what would change; --diff shows the compose diff.
import { fileDiff } from '../../runner/diff.ts';
import { shQuote } from '../../runner/connection/shell.ts';
import { redact } from '../../runner/secret.ts';
import type { Action, ActionContext, ActionResult, FileDiff } from '../../runner/types.ts';
import { TaskError } from '../../runner/types.ts';
import { PortainerClient, PortainerError, type Endpoint, type Pair, type PortainerApiOptions, type Stack } from './client.ts';
import { afterDeploy, createSecrets, liveDrift, planSecrets, type DockerSecret, type DockerService, type DockerTask, type StackPlan, type SwarmView } from '../../stacks/plan.ts';
import type { StackHealth } from '../../stacks/types.ts';
import { removeDockerStack } from '../../stacks/docker.ts';

export { notReady, withEnv } from '../../stacks/plan.ts';

/** What sync deploys: the stack plan (stacks/plan.ts). */
export type SyncStackSpec = StackPlan;

export interface SyncApiOptions extends PortainerApiOptions {
  /** The environment (endpoint) by name; unset: the only Docker environment there is. */
  endpoint?: string;
}

export interface SyncStackOptions {
  api: SyncApiOptions;
  stack: StackPlan;
  /** Seconds to wait for the stack to be ready (default 180). */
  readinessTimeout?: number;
  /** Between readiness polls, milliseconds (default 1000). */
  pollInterval?: number;
  /** 'later': don't wait here (Portainer's own stack during a bootstrap: see bootstrap.ts). */
  readiness?: 'now' | 'later';
  /** Check mode on a fresh swarm: there is no Portainer to ask yet; report the creation. */
  noApiYet?: boolean;
  /**
   * A stack running in the swarm that Portainer does not know (deployed with `docker stack
   * deploy`): hand it over (`docker stack rm` on the manager, named volumes kept, then create it
   * through the API) instead of refusing. swarm.migrateDockerStacks.
   */
  migrate?: { stateDir?: string };
}

/** Portainer's stack name normalization (api/exec/swarm_stack.go: lowercase, [^-_a-z0-9] removed). */
export function normalizeStackName(name: string): string {
  return name.toLowerCase().replace(/[^-_a-z0-9]/g, '');
}

const envList = (env: Record<string, string> = {}): Pair[] =>
  Object.keys(env)
    .sort()
    .map((name) => ({ name, value: env[name]! }));

const envText = (env: Pair[]) =>
  [...env]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((p) => `${p.name}=${p.value}`)
    .join('\n') + (env.length ? '\n' : '');

export function sameEnv(a: Pair[] | null | undefined, b: Pair[]): boolean {
  return envText(a ?? []) === envText(b);
}

/** One client per API and user for the whole run: one login, one TLS session. */
const clients = new Map<string, PortainerClient>();
export function clientFor(api: PortainerApiOptions): PortainerClient {
  const key = `${api.url} ${api.username} ${api.ca ?? ''}`;
  let c = clients.get(key);
  if (!c) clients.set(key, (c = new PortainerClient(api)));
  return c;
}

/** The environment sync deploys to: by name, else the only Docker one (Type 1 local, 2 agent). */
export function pickEndpoint(list: Endpoint[], name: string | undefined, base: string): Endpoint {
  if (name) {
    const e = list.find((x) => x.Name === name);
    if (!e) throw new TaskError(`Portainer at ${base}: no environment named "${name}" (there are: ${list.map((x) => `"${x.Name}"`).join(', ') || 'none'})`);
    return e;
  }
  const docker = list.filter((x) => x.Type === 1 || x.Type === 2);
  if (docker.length === 1) return docker[0]!;
  throw new TaskError(
    `Portainer at ${base}: ${docker.length ? `${docker.length} Docker environments (${docker.map((x) => `"${x.Name}"`).join(', ')})` : 'no Docker environment'}; set the environment's name in the inventory (portainerApi.endpoint)`,
  );
}

const byStack = (name: string) => JSON.stringify({ label: [`com.docker.stack.namespace=${name}`] });

/** The swarm through Portainer's Docker proxy; an old secret is removed on the manager (the task's host). */
export function proxySwarmView(api: PortainerClient, endpointId: number, ctx: ActionContext): SwarmView {
  return {
    services: (name) => api.docker<DockerService[]>(endpointId, '/services', { filters: byStack(name) }),
    tasks: (name) => api.docker<DockerTask[]>(endpointId, '/tasks', { filters: byStack(name) }),
    async secrets(name) {
      const found = await api.docker<DockerSecret[]>(endpointId, '/secrets', { filters: JSON.stringify({ name: [`${name}_`] }) });
      return found.filter((s) => s.Spec?.Name?.startsWith(`${name}_`));
    },
    createSecret: (name, labels, value) => api.createDockerSecret(endpointId, name, value, labels),
    async removeSecret(name) {
      return (await ctx.run(`docker secret rm ${shQuote(name)}`, { become: true })).code === 0;
    },
  };
}

export function syncStack(o: SyncStackOptions): Action {
  const name = normalizeStackName(o.stack.name);
  const timing = { timeout: o.readinessTimeout, pollInterval: o.pollInterval };
  return {
    module: 'portainer_stack',
    // It holds its own mutations back in check mode (docs/check-mode.md): the engine lets its commands through.
    checkMode: 'self',
    summary: `portainer stack ${name}`,
    async run(ctx): Promise<ActionResult> {
      if (name !== o.stack.name) throw new TaskError(`stack name "${o.stack.name}": Portainer would store it as "${name}"; use that name`);
      const plan = o.stack;
      const content = plan.content;
      const env = envList(plan.env);
      if (o.noApiYet) {
        if (!ctx.check) throw new TaskError(`stack ${name}: no Portainer API to send it to`);
        const diff = [fileDiff(`portainer:${name}/docker-compose.yml`, '', content), ...(env.length ? [fileDiff(`portainer:${name}/Env`, '', envText(env))] : [])];
        return result(true, `stack ${name} would be created (through the one-off Portainer)`, diff, ctx, []);
      }
      const api = clientFor(o.api);
      try {
        const endpoint = pickEndpoint(await api.endpoints(), o.api.endpoint, api.base);
        const swarmId = await api.swarmId(endpoint.Id);
        const view = proxySwarmView(api, endpoint.Id, ctx);
        const notes: string[] = [];
        let changed = false;

        // Three reads that do not depend on each other, at once (each a round trip to Portainer
        // and its Docker proxy); their answers are judged in the order below, a failed one only
        // where it is used.
        const [stacksR, secretsR, servicesR] = await Promise.allSettled([api.stacks({ SwarmID: swarmId, EndpointID: endpoint.Id }), planSecrets(view, plan), view.services(name)]);
        const stacks = settled(stacksR);
        const existing: Stack | undefined = stacks.find((s) => normalizeStackName(s.Name) === name);
        let migrated = false;
        // Refusals first, before anything is written (a refused run changes nothing).
        if (!existing) {
          // A stack deployed outside Portainer cannot be created (409) nor adopted through its API.
          const services = settled(servicesR);
          if (services.length && o.migrate) {
            if (ctx.check) {
              const diff = [fileDiff(`portainer:${name}/docker-compose.yml`, '', content)];
              return result(true, `stack ${name} runs outside Portainer: would be handed over (docker stack rm, named volumes kept) and created in swarm ${swarmId}`, diff, ctx, []);
            }
            await removeDockerStack(ctx, name, o.migrate.stateDir);
            migrated = true;
            notes.push(`docker stack ${name} removed for the hand-over to Portainer (named volumes kept)`);
          } else if (services.length)
            throw new TaskError(
              `stack ${name} runs in swarm ${swarmId} (${services.length} service${services.length > 1 ? 's' : ''}) but Portainer at ${api.base} does not manage it (it was deployed outside Portainer, e.g. with swarm.deployStacksWith: 'docker'); Portainer cannot adopt it. Either keep deploying it with docker (swarm.deployStacksWith: 'docker'), or let site hand it over: set swarm.migrateDockerStacks: true in the inventory and run site (it removes the stack with docker stack rm, keeping its named volumes, and creates it through Portainer; docs/stacks.md)`,
            );
        } else if (existing.Status === 2)
          throw new TaskError(`stack ${name} (Id ${existing.Id}) is stopped in Portainer (Status 2); start it in Portainer, then sync again`);

        // Docker secrets: immutable, named by a fingerprint of their value, so present = current.
        // After the hand-over above (docker stack rm), read the secrets again: secrets of an older
        // labelling (com.docker.stack.namespace) may have gone with the stack.
        const secrets = migrated ? await planSecrets(view, plan) : settled(secretsR);
        if (secrets.missing.length) {
          changed = true;
          notes.push(...secrets.missing.map(([key]) => `secret ${key} ${ctx.check ? 'would be created' : 'created'}`));
          if (!ctx.check) await createSecrets(view, plan, secrets.missing);
        }

        let diff: FileDiff[] = [];
        let stackId: number;
        if (!existing) {
          changed = true;
          diff = [fileDiff(`portainer:${name}/docker-compose.yml`, '', content)];
          if (env.length) diff.push(fileDiff(`portainer:${name}/Env`, '', envText(env)));
          if (ctx.check) return result(true, `stack ${name} would be created in swarm ${swarmId}`, diff, ctx, notes);
          const created = await api.createSwarmStack(endpoint.Id, { Name: name, SwarmID: swarmId, StackFileContent: content, Env: env, FromAppTemplate: false });
          stackId = created.Id;
          notes.unshift(`created stack ${name} (Id ${created.Id})`);
        } else {
          stackId = existing.Id;
          const current = await api.stackFile(existing.Id);
          const fileSame = current === content;
          const envSame = sameEnv(existing.Env, env);
          if (!fileSame) diff.push(fileDiff(`portainer:${name}/docker-compose.yml`, current, content));
          if (!envSame) diff.push(fileDiff(`portainer:${name}/Env`, envText(existing.Env ?? []), envText(env)));
          // Same file and Env: are the services still what the file says? (Removed or changed
          // outside Portainer, e.g. `docker stack rm`, which Portainer's record outlives.)
          const drift = fileSame && envSame ? liveDrift(plan, settled(servicesR)) : [];
          if (!fileSame || !envSame || drift.length) {
            changed = true;
            const what = [!fileSame && 'stack file', !envSame && 'Env', drift.length && `live services (${drift.join('; ')})`].filter(Boolean).join(' and ');
            if (ctx.check) return result(true, `stack ${name} (Id ${existing.Id}) would be updated: ${what} differ${/ and |^live services/.test(what) ? '' : 's'}`, diff, ctx, notes);
            const updated = await api.updateStack(existing.Id, endpoint.Id, { StackFileContent: content, Env: env, Prune: true, RepullImageAndRedeploy: false });
            if (updated.Id !== existing.Id) throw new TaskError(`stack ${name}: Portainer answered the update of Id ${existing.Id} with Id ${updated.Id}`);
            notes.unshift(`updated stack ${name} (Id ${existing.Id}): ${what}`);
          } else notes.unshift(`stack ${name} (Id ${existing.Id}) up to date`);
        }
        if (ctx.check) {
          // Up to date but for an older value's secret: the real run removes it.
          if (secrets.stale.length) return result(true, notes.join('; '), diff, ctx, [`would remove old secret(s): ${secrets.stale.join(', ')}`]);
          return result(changed, notes.join('; '), diff, ctx, []);
        }
        const data = { stackId, swarmId, endpointId: endpoint.Id };
        if (o.readiness === 'later') return result(changed, `${notes.join('; ')}; readiness after the hand-over`, diff, ctx, [], data);
        // Ready (also when nothing was sent: a stack must be seen running), then the old secrets go.
        const after = await afterDeploy(ctx, view, plan, timing, secrets.stale);
        return result(changed || after.removed, `${notes.join('; ')}; ready`, diff, ctx, after.secrets, data);
      } catch (e) {
        // Check mode, no answer at all: an earlier play of the same run may be what starts
        // Portainer (site on a fresh swarm): unknown, not failed.
        if (e instanceof PortainerError && e.status === undefined && ctx.check)
          return { changed: 'unknown', msg: redact(`stack ${name}: the Portainer API does not answer (${e.message}); a real run of the earlier tasks may start it`) };
        // Check mode, and the step-ca root it would trust is not exported yet (an earlier play,
        // step-ca's, did not really run: site --check on a fresh lab): unknown too. A real run
        // fails at once naming the file.
        if (ctx.check && (e as NodeJS.ErrnoException).code === 'ENOENT')
          return { changed: 'unknown', msg: `stack ${name}: ${(e as Error).message} (not exported yet: the step-ca play did not really run)` };
        if (e instanceof PortainerError) throw new TaskError(e.message);
        throw e;
      }
    },
  };
}

/** Does the Portainer at this API manage a stack of this name, in its environment's swarm? */
export async function portainerManages(o: SyncApiOptions, name: string): Promise<boolean> {
  const api = clientFor(o);
  const endpoint = pickEndpoint(await api.endpoints(), o.endpoint, api.base);
  const swarmId = await api.swarmId(endpoint.Id);
  return (await api.stacks({ SwarmID: swarmId, EndpointID: endpoint.Id })).some((s) => normalizeStackName(s.Name) === normalizeStackName(name));
}

/** Readiness alone: every task of the stack running, then the product's health (the hand-over), then old secrets removed. */
export function stackReady(o: { api: SyncApiOptions; plan: StackPlan; readinessTimeout?: number; pollInterval?: number }): Action {
  return {
    module: 'portainer_stack',
    // It holds its own mutations back in check mode (docs/check-mode.md): the engine lets its commands through.
    checkMode: 'self',
    summary: `portainer stack ${o.plan.name} ready`,
    async run(ctx): Promise<ActionResult> {
      const api = clientFor(o.api);
      try {
        const endpoint = pickEndpoint(await api.endpoints(), o.api.endpoint, api.base);
        const after = await afterDeploy(ctx, proxySwarmView(api, endpoint.Id, ctx), o.plan, { timeout: o.readinessTimeout, pollInterval: o.pollInterval });
        return { changed: after.removed, msg: [`stack ${o.plan.name} ready`, ...after.secrets].join('; ') };
      } catch (e) {
        if (e instanceof PortainerError) throw new TaskError(e.message);
        throw e;
      }
    },
  };
}

/** A settled read's answer, or its error thrown where the answer is needed. */
function settled<T>(r: PromiseSettledResult<T>): T {
  if (r.status === 'rejected') throw r.reason;
  return r.value;
}

function result(changed: boolean, msg: string, diff: FileDiff[], ctx: ActionContext, extra: string[], data?: unknown): ActionResult {
  return { changed, msg: redact([msg, ...extra].join('; ')), ...(ctx.diff && diff.length ? { diff } : {}), data };
}

export type { StackHealth };
