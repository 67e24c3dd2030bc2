// The one stack plan. Everything a stack deploy decides and checks is written here once; the two
// transports only move it:
//   - stacks/docker.ts          `docker stack deploy` on the manager (swarm.deployStacksWith 'docker')
//   - roles/portainer/sync.ts   the Portainer API (`phoenix sync`, and site by default)
// Each transport gives the plan a SwarmView: the few Docker reads and writes it needs (Docker's
// Engine API on the manager's socket, the docker CLI where it has no curl, or Docker's API
// through Portainer's proxy).
//
//   renderStack(def)        validated against the compose spec, rendered: the stack file
//   liveDrift(plan, live)   the live services against the file as docker deploys it (Env put in)
//   secretLabels(...)       the one labelling scheme of phoenix's docker secrets
//   planSecrets(view, plan) which secrets to create before the deploy, which old ones to remove
//   notReady / waitReady    every task of every service running on the current spec
//   checkHealth(ctx, ...)   the product's own endpoints answering, probed on the manager
//   afterDeploy(...)        readiness, health, then the old secrets removed
import { shQuote } from '../runner/connection/shell.ts';
import type { Secret } from '../runner/secret.ts';
import type { ActionContext } from '../runner/types.ts';
import { TaskError } from '../runner/types.ts';
import { ComposeValidationError, parseCompose, renderCompose, validateCompose, type ComposeFile } from './compose.ts';
import { stackDrift, type LiveService } from './drift.ts';
import type { StackDefinition, StackHealth, StackSecret } from './types.ts';

/** What a transport deploys: the stack file as text, with what goes beside it. */
export interface StackPlan {
  /** Swarm stack name (`<name>_<service>` are its services). */
  name: string;
  /** The rendered stack file (compose YAML), exactly as deployed and recorded. */
  content: string;
  /** Variables put into the stack file at deploy time (Portainer's Env); phoenix's stacks use none. */
  env?: Record<string, string>;
  /** Docker secrets the file names as external: created before the deploy when missing. */
  secrets?: Record<string, StackSecret>;
  health?: StackHealth[];
}

/** Validated against the compose spec (a TaskError naming each field), then rendered. */
export function renderStack(def: StackDefinition): StackPlan {
  try {
    validateCompose(def.compose, `stack ${def.name}`);
  } catch (e) {
    if (e instanceof ComposeValidationError) throw new TaskError(e.message);
    throw e;
  }
  return { name: def.name, content: renderCompose(def.compose), env: def.env ?? {}, secrets: def.secrets ?? {}, health: def.health ?? [] };
}

/**
 * The stack file as `docker stack deploy` sees it once the Env is put in: `${NAME}` and `$NAME`
 * replaced (unset: empty, as compose does), `$$` left for stackDrift.
 */
export function withEnv(v: unknown, env: Record<string, string>): unknown {
  if (typeof v === 'string') return v.replace(/\$\$|\$\{(\w+)\}|\$(\w+)/g, (m, a?: string, b?: string) => (m === '$$' ? m : (env[(a ?? b)!] ?? '').replace(/\$/g, '$$$$')));
  if (Array.isArray(v)) return v.map((x) => withEnv(x, env));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, withEnv(x, env)]));
  return v;
}

/** Every difference between the live services and the plan's file, one line each. */
export function liveDrift(plan: StackPlan, live: LiveService[]): string[] {
  return stackDrift(withEnv(parseCompose(plan.content), plan.env ?? {}) as ComposeFile, plan.name, live);
}

// --- Docker objects, as Docker's Engine API (and `docker ... inspect`) shows them --------------

type ContainerSpec = Record<string, unknown>;
/** A swarm service: what drift reads (LiveService) and what readiness reads. */
export interface DockerService extends LiveService {
  ID: string;
  Spec: LiveService['Spec'] & { Mode?: { Replicated?: { Replicas?: number }; Global?: object }; TaskTemplate?: LiveService['Spec']['TaskTemplate'] & { ForceUpdate?: number } };
  UpdateStatus?: { State?: string; Message?: string };
}
export interface DockerTask {
  ServiceID: string;
  NodeID?: string;
  DesiredState: string;
  Status: { State: string; Err?: string; Message?: string };
  Spec?: { ContainerSpec?: ContainerSpec; ForceUpdate?: number };
}
export interface DockerSecret {
  ID: string;
  Spec: { Name: string; Labels?: Record<string, string> | null };
}

/** What the plan needs from a transport: Docker's view of one swarm, and its secrets. */
export interface SwarmView {
  /** The services labelled com.docker.stack.namespace=<stack>. */
  services(stack: string): Promise<DockerService[]>;
  /** The tasks of those services (all desired states: failed ones carry the errors). */
  tasks(stack: string): Promise<DockerTask[]>;
  /** The secrets whose name starts with `<stack>_` (every name secretName() makes for it). */
  secrets(stack: string): Promise<DockerSecret[]>;
  /** Creates a secret; the value never on an argument list. */
  createSecret(name: string, labels: Record<string, string>, value: Secret): Promise<void>;
  /** Removes a secret; false (not an error) when docker refuses, e.g. still in use. */
  removeSecret(name: string): Promise<boolean>;
}

// --- Secrets ------------------------------------------------------------------------------------

/**
 * The one labelling scheme of the docker secrets phoenix makes, whichever transport made them.
 * Not com.docker.stack.namespace: the secrets are external to the stack file, so
 * `docker stack rm` (a migration, a hand-made removal) leaves them alone.
 */
export function secretLabels(stack: string, key: string): Record<string, string> {
  return { 'phoenix.stack': stack, 'phoenix.key': key };
}

/** A secret phoenix made for this stack: today's labels, or the older Portainer-path ones. */
export function ownSecret(s: DockerSecret, stack: string): boolean {
  const l = s.Spec.Labels ?? {};
  if (!s.Spec.Name.startsWith(`${stack}_`)) return false;
  return l['phoenix.stack'] === stack || (l['com.docker.stack.namespace'] === stack && l['phoenix.managed'] === 'true');
}

export interface SecretPlan {
  /** key -> secret, to create before the deploy. */
  missing: [string, StackSecret][];
  /** Names of this stack's secrets that the plan no longer uses (an older value): removed after. */
  stale: string[];
}

export async function planSecrets(view: SwarmView, plan: StackPlan): Promise<SecretPlan> {
  const wanted = Object.entries(plan.secrets ?? {});
  const have = await view.secrets(plan.name);
  const names = new Set(have.map((s) => s.Spec.Name));
  const keep = new Set(wanted.map(([, s]) => s.name));
  return {
    missing: wanted.filter(([, s]) => !names.has(s.name)),
    stale: have.filter((s) => ownSecret(s, plan.name) && !keep.has(s.Spec.Name)).map((s) => s.Spec.Name).sort(),
  };
}

export async function createSecrets(view: SwarmView, plan: StackPlan, missing: SecretPlan['missing']): Promise<void> {
  for (const [key, s] of missing) await view.createSecret(s.name, secretLabels(plan.name, key), s.value);
}

// --- Readiness ----------------------------------------------------------------------------------

/**
 * Does a task run the service's current spec? Compared on what a deploy changes (the swarm
 * copies these verbatim into each task; other fields get defaults filled in): right after an
 * update the old tasks still run until the updater replaces them.
 */
function current(t: DockerTask, s: DockerService): boolean {
  const tpl = s.Spec.TaskTemplate as { ContainerSpec?: ContainerSpec; ForceUpdate?: number } | undefined;
  if (!tpl?.ContainerSpec || !t.Spec?.ContainerSpec) return true;
  const pick = (c: ContainerSpec) => JSON.stringify(['Image', 'Command', 'Args', 'Env', 'Dir', 'User', 'Mounts', 'Secrets', 'Labels'].map((k) => c[k] ?? null));
  return pick(t.Spec.ContainerSpec) === pick(tpl.ContainerSpec) && (t.Spec.ForceUpdate ?? 0) === (tpl.ForceUpdate ?? 0);
}

/**
 * Why the stack is not ready yet ('' when it is), from its services and their tasks; `expect`:
 * the service names the file declares (one missing is not ready). Throws on a failed update.
 */
export function notReady(services: DockerService[], tasks: DockerTask[], expect: string[] = []): string {
  if (!services.length) return 'no services yet';
  const why: string[] = [];
  for (const n of expect) if (!services.some((s) => s.Spec.Name === n)) why.push(`${n}: no service`);
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
    // A task told to stop that still runs (its stop grace period) still gets connections through
    // the routing mesh, and drops them when it exits: not ready until it is gone.
    const stopping = tasks.filter((t) => t.ServiceID === s.ID && t.DesiredState !== 'running' && t.Status.State === 'running').length;
    if (stale) why.push(`${s.Spec.Name}: ${stale} task${stale > 1 ? 's' : ''} still on the previous spec`);
    else if (stopping) why.push(`${s.Spec.Name}: ${stopping} old task${stopping > 1 ? 's' : ''} still stopping`);
    else if (running < want) {
      const errs = [...new Set(tasks.filter((t) => t.ServiceID === s.ID && t.Status.Err).map((t) => t.Status.Err!))].slice(0, 2);
      why.push(`${s.Spec.Name}: ${running}/${want} running${errs.length ? ` (${errs.join('; ')})` : ''}`);
    }
  }
  return why.join(', ');
}

/** The service names a stack file declares (`<stack>_<key>`). */
export function serviceNames(plan: StackPlan): string[] {
  return Object.keys((parseCompose(plan.content) as ComposeFile | null)?.services ?? {}).map((k) => `${plan.name}_${k}`);
}

export interface Timing {
  /** Seconds for the tasks, and again for each health endpoint (default 180). */
  timeout?: number;
  /** Between readiness polls, milliseconds (default 1000). */
  pollInterval?: number;
}

/** Polls until every service of the stack has all its tasks running on its current spec. */
export async function waitReady(view: SwarmView, plan: StackPlan, t: Timing = {}): Promise<string> {
  const timeout = t.timeout ?? 180;
  const deadline = Date.now() + timeout * 1000;
  const expect = serviceNames(plan);
  for (;;) {
    const [services, tasks] = await Promise.all([view.services(plan.name), view.tasks(plan.name)]);
    const why = notReady(services, tasks, expect);
    if (!why) return `${services.length} service(s) running`;
    if (Date.now() > deadline) throw new TaskError(`stack ${plan.name} not ready after ${timeout}s: ${why}`);
    await new Promise((r) => setTimeout(r, t.pollInterval ?? 1000));
  }
}

/** The product's own health answers, probed on the task's host (the manager) with curl, TLS verified there. */
export async function checkHealth(ctx: ActionContext, stack: string, health: StackHealth[], t: Timing = {}): Promise<void> {
  const timeout = t.timeout ?? 180;
  for (const h of health) {
    const want = h.status ?? 200;
    const started = Date.now();
    // One remote loop bounded by the deadline instead of a round trip per attempt.
    const cmd = `end=$(( $(date +%s) + ${Math.ceil(timeout)} )); while :; do code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 ${shQuote(h.url)} 2>/tmp/.phoenix-health.$$) || code=000; [ "$code" = ${want} ] && { rm -f /tmp/.phoenix-health.$$; exit 0; }; [ "$(date +%s)" -ge "$end" ] && { echo "status $code: $(head -c 300 /tmp/.phoenix-health.$$)"; rm -f /tmp/.phoenix-health.$$; exit 1; }; sleep 0.5; done`;
    const r = await ctx.run(cmd, { become: false, timeout: timeout + 30 });
    if (r.code !== 0) throw new TaskError(`stack ${stack}: ${h.what} (${h.url}) did not answer ${want} within ${Math.round((Date.now() - started) / 1000)}s: ${r.stdout.trim()}`);
  }
}

export interface AfterDeploy {
  /** "2 service(s) running" */
  running: string;
  /** What the health endpoints were ("qdrant /readyz ok"), when the stack has any. */
  healthy?: string;
  /** Old secrets removed (or kept while still in use): report lines. */
  secrets: string[];
  /** Whether an old secret was removed (a change). */
  removed: boolean;
}

/** After a deploy (or to confirm one): every task running, the product healthy, then this stack's old secrets removed. */
export async function afterDeploy(ctx: ActionContext, view: SwarmView, plan: StackPlan, t: Timing = {}, stale?: string[]): Promise<AfterDeploy> {
  const running = await waitReady(view, plan, t);
  await checkHealth(ctx, plan.name, plan.health ?? [], t);
  const secrets = await removeStale(view, plan, stale);
  return { running, healthy: plan.health?.length ? `${plan.health.map((h) => h.what).join(', ')} ok` : undefined, secrets, removed: secrets.some((l) => l.startsWith('old secret') && l.includes(' removed: ')) };
}

/** Removes the stack's secrets the plan no longer names (an older value); notes what it did. */
export async function removeStale(view: SwarmView, plan: StackPlan, stale?: string[]): Promise<string[]> {
  const names = stale ?? (await planSecrets(view, plan)).stale;
  const removed: string[] = [];
  const kept: string[] = [];
  for (const n of names) ((await view.removeSecret(n)) ? removed : kept).push(n);
  return [...(removed.length ? [`old secret${removed.length > 1 ? 's' : ''} removed: ${removed.join(', ')}`] : []), ...(kept.length ? [`old secret${kept.length > 1 ? 's' : ''} still in use, kept: ${kept.join(', ')}`] : [])];
}
