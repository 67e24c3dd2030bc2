// portainer_stack: one swarm stack kept in shape through the Portainer API (`phoenix sync`).
//   1. authenticate (POST /api/auth; the password is a Secret)
//   2. the environment (GET /api/endpoints) and its swarm ID (GET /api/endpoints/{id}/docker/swarm)
//   3. the stack by name (GET /api/stacks?filters={"SwarmID","EndpointID"})
//   4. update it (PUT /api/stacks/{id}?endpointId=) only when the stack file
//      (GET /api/stacks/{id}/file) or Env differs, or the live services (Docker API through
//      Portainer's proxy) differ from the file: a service changed or removed by hand is drift, as
//      in site's docker_stack, and the PUT deploys the stack again; create it when absent
//      (POST /api/stacks/create/swarm/string?endpointId=, with SwarmID)
//   5. readiness: every service of the stack has its tasks running (Docker API through
//      Portainer's proxy), then the product's own health endpoints, with a deadline.
// The docker secrets a stack file refers to (external, immutable, fingerprinted names; see
// stacks/types.ts) are created through the proxy first when missing.
// Check mode sends only GETs and reports what would change; --diff shows the compose diff.
import { fileDiff } from '../../runner/diff.ts';
import { shQuote } from '../../runner/connection/shell.ts';
import { redact, Secret } from '../../runner/secret.ts';
import type { Action, ActionContext, ActionResult, FileDiff } from '../../runner/types.ts';
import { TaskError } from '../../runner/types.ts';
import { PortainerClient, PortainerError, type Endpoint, type Pair, type PortainerApiOptions, type Stack } from './client.ts';
import { parse as parseYaml } from 'yaml';
import { stackDrift, type LiveService } from '../../stacks/drift.ts';
import type { ComposeFile } from '../../stacks/compose.ts';

export interface SyncHealth {
  /** For messages, e.g. "qdrant /readyz". */
  what: string;
  /** Probed with curl on the task's host (the swarm manager), TLS verified by its trust store. */
  url: string;
  status?: number;
}

export interface SyncStackSpec {
  /** Stack name (Portainer normalizes it: lowercase, [-_a-z0-9] only). */
  name: string;
  /** The rendered stack file (compose YAML), exactly as Portainer will store it. */
  content: string;
  /** Portainer's Env (variables for the stack file); sent sorted by name. */
  env?: Record<string, string>;
  /** Docker secrets the stack file names as external: made through the proxy when missing. */
  secrets?: Record<string, { name: string; value: Secret }>;
  health?: SyncHealth[];
}

export interface SyncApiOptions extends PortainerApiOptions {
  /** The environment (endpoint) by name; unset: the only Docker environment there is. */
  endpoint?: string;
}

export interface SyncStackOptions {
  api: SyncApiOptions;
  stack: SyncStackSpec;
  /** Seconds to wait for the stack to be ready (default 180). */
  readinessTimeout?: number;
  /** Between readiness polls, milliseconds (default 1000). */
  pollInterval?: number;
  /** 'later': don't wait here (Portainer's own stack during a bootstrap: see bootstrap.ts). */
  readiness?: 'now' | 'later';
  /** Check mode on a fresh swarm: there is no Portainer to ask yet; report the creation. */
  noApiYet?: boolean;
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

type ContainerSpec = Record<string, unknown>;
interface DockerService {
  ID: string;
  Spec: { Name: string; Mode?: { Replicated?: { Replicas?: number }; Global?: object }; TaskTemplate?: { ContainerSpec?: ContainerSpec; ForceUpdate?: number } };
  UpdateStatus?: { State?: string; Message?: string };
}
interface DockerTask {
  ServiceID: string;
  NodeID?: string;
  DesiredState: string;
  Status: { State: string; Err?: string; Message?: string };
  Spec?: { ContainerSpec?: ContainerSpec; ForceUpdate?: number };
}

/**
 * Does a task run the service's current spec? Compared on what a deploy changes (the swarm
 * copies these verbatim into each task; other fields get defaults filled in): right after an
 * update the old tasks still run until the updater replaces them.
 */
function current(t: DockerTask, s: DockerService): boolean {
  const tpl = s.Spec.TaskTemplate;
  if (!tpl?.ContainerSpec || !t.Spec?.ContainerSpec) return true;
  const pick = (c: ContainerSpec) => JSON.stringify(['Image', 'Command', 'Args', 'Env', 'Dir', 'User', 'Mounts', 'Secrets', 'Labels'].map((k) => c[k] ?? null));
  return pick(t.Spec.ContainerSpec) === pick(tpl.ContainerSpec) && (t.Spec.ForceUpdate ?? 0) === (tpl.ForceUpdate ?? 0);
}

/** Why the stack is not ready yet ('' when it is), from its services and their tasks. */
export function notReady(services: DockerService[], tasks: DockerTask[]): string {
  if (!services.length) return 'no services yet';
  const why: string[] = [];
  for (const s of services) {
    const st = s.UpdateStatus?.State;
    if (st === 'updating' || st === 'rollback_started') {
      why.push(`${s.Spec.Name}: update ${st}`);
      continue;
    }
    if (st === 'paused' || st === 'rollback_paused' || st === 'rollback_completed')
      throw new TaskError(`service ${s.Spec.Name}: update ${st}${s.UpdateStatus?.Message ? `: ${s.UpdateStatus.Message}` : ''}`);
    const mine = tasks.filter((t) => t.ServiceID === s.ID && t.DesiredState === 'running');
    const stale = mine.filter((t) => !current(t, s)).length;
    const running = mine.filter((t) => t.Status.State === 'running' && current(t, s)).length;
    // A global service has one task per node its constraints allow: all of them must run.
    const want = s.Spec.Mode?.Global ? Math.max(mine.length, 1) : (s.Spec.Mode?.Replicated?.Replicas ?? 1);
    if (stale) why.push(`${s.Spec.Name}: ${stale} task${stale > 1 ? 's' : ''} still on the previous spec`);
    else if (running < want) {
      const errs = [...new Set(tasks.filter((t) => t.ServiceID === s.ID && t.Status.Err).map((t) => t.Status.Err!))].slice(0, 2);
      why.push(`${s.Spec.Name}: ${running}/${want} running${errs.length ? ` (${errs.join('; ')})` : ''}`);
    }
  }
  return why.join(', ');
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

export function syncStack(o: SyncStackOptions): Action {
  const name = normalizeStackName(o.stack.name);
  return {
    module: 'portainer_stack',
    summary: `portainer stack ${name}`,
    async run(ctx): Promise<ActionResult> {
      if (name !== o.stack.name) throw new TaskError(`stack name "${o.stack.name}": Portainer would store it as "${name}"; use that name`);
      const content = o.stack.content;
      const env = envList(o.stack.env);
      if (o.noApiYet) {
        if (!ctx.check) throw new TaskError(`stack ${name}: no Portainer API to send it to`);
        const diff = [fileDiff(`portainer:${name}/docker-compose.yml`, '', content), ...(env.length ? [fileDiff(`portainer:${name}/Env`, '', envText(env))] : [])];
        return result(true, `stack ${name} would be created (through the one-off Portainer)`, diff, ctx, []);
      }
      const api = clientFor(o.api);
      try {
        const endpoint = pickEndpoint(await api.endpoints(), o.api.endpoint, api.base);
        const swarmId = await api.swarmId(endpoint.Id);
        const notes: string[] = [];
        let changed = false;

        const stacks = await api.stacks({ SwarmID: swarmId, EndpointID: endpoint.Id });
        const existing: Stack | undefined = stacks.find((s) => normalizeStackName(s.Name) === name);
        // Refusals first, before anything is written (a refused run changes nothing).
        if (!existing) {
          // A stack deployed outside Portainer cannot be created (409) nor adopted through its API.
          const services = await api.docker<unknown[]>(endpoint.Id, '/services', { filters: JSON.stringify({ label: [`com.docker.stack.namespace=${name}`] }) });
          if (services.length)
            throw new TaskError(
              `stack ${name} runs in swarm ${swarmId} (${services.length} service${services.length > 1 ? 's' : ''}) but Portainer at ${api.base} does not manage it (it was deployed outside Portainer); Portainer cannot adopt it. Either keep deploying it with site.ts (swarm.deployStacksWith: 'docker'), or hand it to Portainer: set swarm.deployStacksWith: 'portainer' in the inventory, remove the stack (docker stack rm ${name}; named volumes are kept) and run site or sync again`,
            );
        } else if (existing.Status === 2)
          throw new TaskError(`stack ${name} (Id ${existing.Id}) is stopped in Portainer (Status 2); start it in Portainer, then sync again`);

        // Docker secrets: immutable, named by a fingerprint of their value, so present = current.
        for (const [key, s] of Object.entries(o.stack.secrets ?? {})) {
          const found = await api.docker<{ Spec: { Name: string } }[]>(endpoint.Id, '/secrets', { filters: JSON.stringify({ name: [s.name] }) });
          if (found.some((x) => x.Spec?.Name === s.name)) continue;
          changed = true;
          notes.push(`secret ${key} ${ctx.check ? 'would be created' : 'created'}`);
          if (!ctx.check) await api.createDockerSecret(endpoint.Id, s.name, s.value, { 'com.docker.stack.namespace': name, 'phoenix.managed': 'true' });
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
          let drift: string[] = [];
          if (fileSame && envSame) {
            const live = await api.docker<LiveService[]>(endpoint.Id, '/services', { filters: JSON.stringify({ label: [`com.docker.stack.namespace=${name}`] }) });
            drift = stackDrift(withEnv(parseYaml(content), o.stack.env ?? {}) as ComposeFile, name, live);
          }
          if (!fileSame || !envSame || drift.length) {
            changed = true;
            const what = [!fileSame && 'stack file', !envSame && 'Env', drift.length && `live services (${drift.join('; ')})`].filter(Boolean).join(' and ');
            if (ctx.check) return result(true, `stack ${name} (Id ${existing.Id}) would be updated: ${what} differ${/ and |^live services/.test(what) ? '' : 's'}`, diff, ctx, notes);
            const updated = await api.updateStack(existing.Id, endpoint.Id, { StackFileContent: content, Env: env, Prune: true, PullImage: false });
            if (updated.Id !== existing.Id) throw new TaskError(`stack ${name}: Portainer answered the update of Id ${existing.Id} with Id ${updated.Id}`);
            notes.unshift(`updated stack ${name} (Id ${existing.Id}): ${what}`);
          } else notes.unshift(`stack ${name} (Id ${existing.Id}) up to date`);
        }
        if (ctx.check) return result(changed, notes.join('; '), diff, ctx, []);
        if (o.readiness === 'later') return result(changed, `${notes.join('; ')}; readiness after the hand-over`, diff, ctx, [], { stackId, swarmId, endpointId: endpoint.Id });
        await waitReady(api, endpoint.Id, name, o, ctx);
        await checkHealth(o.stack.health ?? [], o, ctx);
        return result(changed, `${notes.join('; ')}; ready`, diff, ctx, [], { stackId, swarmId, endpointId: endpoint.Id });
      } catch (e) {
        // Check mode, no answer at all: an earlier play of the same run may be what starts
        // Portainer (site with deployStacksWith 'portainer' on a fresh swarm): unknown, not failed.
        if (e instanceof PortainerError && e.status === undefined && ctx.check)
          return { changed: 'unknown', msg: redact(`stack ${name}: the Portainer API does not answer (${e.message}); a real run of the earlier tasks may start it`) };
        if (e instanceof PortainerError) throw new TaskError(e.message);
        throw e;
      }
    },
  };
}

/**
 * The stack file as `docker stack deploy` sees it after Portainer put the stack's Env in:
 * `${NAME}` and `$NAME` replaced (unset: empty, as compose does), `$$` left for stackDrift.
 */
export function withEnv(v: unknown, env: Record<string, string>): unknown {
  if (typeof v === 'string') return v.replace(/\$\$|\$\{(\w+)\}|\$(\w+)/g, (m, a?: string, b?: string) => (m === '$$' ? m : (env[(a ?? b)!] ?? '').replace(/\$/g, '$$$$')));
  if (Array.isArray(v)) return v.map((x) => withEnv(x, env));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, withEnv(x, env)]));
  return v;
}

/** Readiness alone: every task of the stack running, then the product's health. */
export function stackReady(o: { api: SyncApiOptions; name: string; health?: SyncHealth[]; readinessTimeout?: number; pollInterval?: number }): Action {
  return {
    module: 'portainer_stack',
    summary: `portainer stack ${o.name} ready`,
    async run(ctx): Promise<ActionResult> {
      const api = clientFor(o.api);
      try {
        const endpoint = pickEndpoint(await api.endpoints(), o.api.endpoint, api.base);
        const opts = { api: o.api, stack: { name: o.name, content: '', health: o.health }, readinessTimeout: o.readinessTimeout, pollInterval: o.pollInterval };
        await waitReady(api, endpoint.Id, o.name, opts, ctx);
        await checkHealth(o.health ?? [], opts, ctx);
        return { changed: false, msg: `stack ${o.name} ready` };
      } catch (e) {
        if (e instanceof PortainerError) throw new TaskError(e.message);
        throw e;
      }
    },
  };
}

function result(changed: boolean, msg: string, diff: FileDiff[], ctx: ActionContext, extra: string[], data?: unknown): ActionResult {
  return { changed, msg: redact([msg, ...extra].join('; ')), ...(ctx.diff && diff.length ? { diff } : {}), data };
}

/** Every service of the stack has all its tasks running, and no update is in flight. */
async function waitReady(api: PortainerClient, endpointId: number, name: string, o: SyncStackOptions, _ctx: ActionContext): Promise<void> {
  const timeout = o.readinessTimeout ?? 180;
  const deadline = Date.now() + timeout * 1000;
  const label = JSON.stringify({ label: [`com.docker.stack.namespace=${name}`] });
  let why = '';
  for (;;) {
    const services = await api.docker<DockerService[]>(endpointId, '/services', { filters: label });
    const tasks = await api.docker<DockerTask[]>(endpointId, '/tasks', { filters: label });
    why = notReady(services, tasks);
    if (!why) return;
    if (Date.now() > deadline) throw new TaskError(`stack ${name} not ready after ${timeout}s: ${why}`);
    await sleep(o.pollInterval ?? 1000);
  }
}

/** The product's own health answers, probed from the manager with curl (TLS verified there). */
async function checkHealth(health: SyncHealth[], o: SyncStackOptions, ctx: ActionContext): Promise<void> {
  const timeout = o.readinessTimeout ?? 180;
  for (const h of health) {
    const want = h.status ?? 200;
    const deadline = Date.now() + timeout * 1000;
    // One remote loop bounded by the deadline instead of a round trip per attempt.
    const cmd = `end=$(( $(date +%s) + ${Math.ceil(timeout)} )); while :; do code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 ${shQuote(h.url)} 2>/tmp/.phoenix-health.$$) || code=000; [ "$code" = ${want} ] && { rm -f /tmp/.phoenix-health.$$; exit 0; }; [ "$(date +%s)" -ge "$end" ] && { echo "status $code: $(head -c 300 /tmp/.phoenix-health.$$)"; rm -f /tmp/.phoenix-health.$$; exit 1; }; sleep 0.5; done`;
    const r = await ctx.run(cmd, { become: false, timeout: timeout + 30 });
    if (r.code !== 0) throw new TaskError(`${h.what} (${h.url}) not healthy after ${Math.round((timeout * 1000 - Math.max(0, deadline - Date.now())) / 1000)}s: ${r.stdout.trim()}`);
  }
}
