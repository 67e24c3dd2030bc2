// docker_stack: the stack plan (stacks/plan.ts) moved by `docker stack deploy --resolve-image
// never --prune` on a manager (swarm.deployStacksWith 'docker'), only when something differs:
//   - the rendered compose file against the one last deployed (kept on the manager in
//     <stateDir>/<name>.yml, written atomically after a successful deploy), or
//   - the live services against the compose file (a service changed by hand is drift), or
//   - a docker secret the file names is missing (secrets are immutable: a new value is a new
//     secret name, made from stdin, never from an argument list), or an old one is left over.
// Render, drift, secrets, readiness and health are the plan's (the same for the Portainer API);
// this file reads the swarm through Docker's Engine API on the manager's socket (curl; the state,
// the services and the secrets in one round trip), or its docker CLI where the host has no curl,
// and runs the deploy (`docker stack deploy`: the stack format is the CLI's, not the API's).
import { randomBytes } from 'node:crypto';
import { shQuote } from '../runner/connection/shell.ts';
import { fileDiff } from '../runner/diff.ts';
import { fileState, readFile } from '../runner/facts.ts';
import { redact, Secret } from '../runner/secret.ts';
import type { Action, ActionContext, ActionResult } from '../runner/types.ts';
import { TaskError } from '../runner/types.ts';
import type { LiveService } from './drift.ts';
import { afterDeploy, createSecrets, liveDrift, planSecrets, removeStale, renderStack, type DockerSecret, type DockerService, type DockerTask, type SwarmView } from './plan.ts';
import type { StackDefinition } from './types.ts';
import { invalidArgs } from '../runner/modules/args.ts';

export interface DockerStackOptions {
  /** The stack, or a function making it when the task runs (secrets are read then). */
  stack: StackDefinition | (() => StackDefinition);
  /** Where the manager keeps the compose file as last deployed (default /etc/phoenix/stacks). */
  stateDir?: string;
  /** Seconds for every task to be Running and the health endpoints to answer (default 180). */
  timeout?: number;
  /** Between readiness polls, milliseconds (default 500). */
  pollInterval?: number;
}

const HEADER = '# managed by phoenix (docker_stack): the compose file as last deployed; edits are drift\n';
async function must(ctx: ActionContext, cmd: string, what: string, opts: Parameters<ActionContext['run']>[1] = {}) {
  const r = await ctx.run(cmd, opts);
  if (r.code !== 0) throw new TaskError(`${ctx.host.name}: ${what}`, { command: cmd, stderr: r.stderr, stdout: r.stdout, code: r.code });
  return r;
}

/** `docker ... inspect` output: a JSON array (one per object) or nothing. */
const inspected = <T>(out: string): T[] => (out.trim() ? (JSON.parse(out) as T[]) : []);

const byStack = (name: string) => `label=com.docker.stack.namespace=${name}`;

/** The swarm as the manager's docker CLI shows it (the same objects as Docker's Engine API); for a host without curl. */
export function cliSwarmView(ctx: ActionContext): SwarmView {
  return {
    async services(name) {
      const cmd = `ids=$(docker service ls -q --filter ${shQuote(byStack(name))}) && { [ -z "$ids" ] || docker service inspect $ids; }`;
      return inspected<DockerService>((await must(ctx, cmd, `cannot inspect the services of stack ${name}`)).stdout);
    },
    async tasks(name) {
      const cmd = `ids=$(docker service ls -q --filter ${shQuote(byStack(name))}) && t=$([ -z "$ids" ] || docker service ps -q --no-trunc $ids) && { [ -z "$t" ] || docker inspect --type task $t; }`;
      return inspected<DockerTask>((await must(ctx, cmd, `cannot read the tasks of stack ${name}`)).stdout);
    },
    async secrets(name) {
      const cmd = `ids=$(docker secret ls -q --filter ${shQuote(`name=${name}_`)}) && { [ -z "$ids" ] || docker secret inspect $ids; }`;
      // The name filter matches anywhere in the name: keep the ones that start with it.
      return inspected<DockerSecret>((await must(ctx, cmd, 'cannot list docker secrets')).stdout).filter((s) => s.Spec.Name.startsWith(`${name}_`));
    },
    async createSecret(name, labels, value: Secret) {
      const l = Object.entries(labels).map(([k, v]) => `--label ${shQuote(`${k}=${v}`)}`).join(' ');
      // The value goes on stdin ("-"): never on an argument list.
      await must(ctx, `docker secret create ${l} ${shQuote(name)} -`, `cannot create docker secret ${name}`, { stdin: value });
    },
    async removeSecret(name) {
      return (await ctx.run(`docker secret rm ${shQuote(name)}`)).code === 0;
    },
  };
}

const SOCKET = '/var/run/docker.sock';
const api = (path: string, query?: Record<string, string>) => `http://localhost${path}${query ? `?${new URLSearchParams(query)}` : ''}`;
const stackFilter = (name: string) => ({ filters: JSON.stringify({ label: [`com.docker.stack.namespace=${name}`] }) });
const secretFilter = (name: string) => ({ filters: JSON.stringify({ name: [`${name}_`] }) });

type Answer = { status: number; body: string };
type Gets = { answers: Answer[]; complete: boolean; command: string; code: number; stderr: string } | { noCurl: { code: number; stdout: string; stderr: string } };

/**
 * GETs on Docker's Engine API through the manager's socket, all in one curl process (one round
 * trip, one connection; read-only): each answer's HTTP status and body, apart. A transfer that
 * failed (no socket, dockerd down) has status 0, and curl says why on stderr. `complete` is false
 * when curl did not print an answer per URL (a curl without --unix-socket, output cut short).
 * Where the host has no curl, `withoutCurl` runs in the same round trip instead, and its output
 * comes back as `noCurl`.
 */
async function engineGets(ctx: ActionContext, urls: string[], withoutCurl = ':'): Promise<Gets> {
  const mark = `phx-api-${randomBytes(6).toString('hex')}`;
  const command = `command -v curl >/dev/null 2>&1 || { echo ${mark}-no-curl; ${withoutCurl}; exit; }; curl -sS --unix-socket ${SOCKET} -w ${shQuote(`\\n${mark} %{http_code}\\n`)} ${urls.map(shQuote).join(' ')}`;
  const r = await ctx.probe(command);
  if (r.stdout.startsWith(`${mark}-no-curl\n`)) return { noCurl: { code: r.code, stdout: r.stdout.slice(mark.length + 9), stderr: r.stderr } };
  const answers: Answer[] = [];
  const re = new RegExp(`\\n${mark} (\\d{3})\\n`, 'g');
  let from = 0;
  for (let m; (m = re.exec(r.stdout)); from = re.lastIndex) answers.push({ status: Number(m[1]), body: r.stdout.slice(from, m.index) });
  return { answers, complete: answers.length === urls.length, command, code: r.code, stderr: r.stderr };
}

/** Why a call got no answer: curl's own words (each once) where it said any. */
const why = (g: { stderr: string }, a?: Answer) =>
  a && a.status !== 0
    ? `docker's Engine API answered ${a.status}${a.body.trim() ? `: ${a.body.trim().slice(0, 300)}` : ''}`
    : `no answer on ${SOCKET}${g.stderr.trim() ? `: ${[...new Set(g.stderr.trim().split('\n'))].slice(-3).join('; ')}` : ''}`;

/** An Engine API answer's JSON, or a TaskError naming the host, the call, its status and docker's message. */
function answer<T>(ctx: ActionContext, what: string, a: Answer, ok = 200): T {
  if (a.status !== ok) throw new TaskError(`${ctx.host.name}: ${what}: docker's Engine API answered ${a.status || 'nothing (is dockerd running?)'}${a.body.trim() ? `: ${a.body.trim().slice(0, 300)}` : ''}`);
  try {
    return (a.body.trim() ? JSON.parse(a.body) : undefined) as T;
  } catch {
    throw new TaskError(`${ctx.host.name}: ${what}: docker's Engine API answer is not JSON (cut short?): ${JSON.stringify(a.body.slice(0, 200))}`);
  }
}

/** The swarm through Docker's Engine API on the manager's socket (the objects `docker ... inspect` prints). */
export function engineSwarmView(ctx: ActionContext): SwarmView {
  const get = async <T>(what: string, url: string): Promise<T> => {
    const got = await engineGets(ctx, [url]);
    if ('noCurl' in got) throw new TaskError(`${ctx.host.name}: ${what}: no curl on the host any more`);
    const a = got.answers[0];
    if (!got.complete || !a || a.status === 0) throw new TaskError(`${ctx.host.name}: ${what}: ${why(got, a)}`, { command: got.command, stderr: got.stderr, code: got.code });
    return answer<T>(ctx, what, a);
  };
  return {
    services: (name) => get<DockerService[]>(`cannot inspect the services of stack ${name}`, api('/services', stackFilter(name))),
    tasks: (name) => get<DockerTask[]>(`cannot read the tasks of stack ${name}`, api('/tasks', stackFilter(name))),
    async secrets(name) {
      // The name filter matches anywhere in the name: keep the ones that start with it.
      return (await get<DockerSecret[]>('cannot list docker secrets', api('/secrets', secretFilter(name)))).filter((x) => x.Spec?.Name?.startsWith(`${name}_`));
    },
    async createSecret(name, labels, value: Secret) {
      // The value base64-encoded in the request body, on stdin: never on an argument list.
      const body = new Secret(JSON.stringify({ Name: name, Labels: labels, Data: Buffer.from(value.reveal()).toString('base64') }), `${value.name} (request)`);
      const cmd = `curl -sS --unix-socket ${SOCKET} -o /dev/stderr -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary @- ${shQuote(api('/secrets/create'))}`;
      const r = await ctx.run(cmd, { stdin: body });
      if (r.code !== 0 || r.stdout.trim() !== '201') throw new TaskError(`${ctx.host.name}: cannot create docker secret ${name} (HTTP ${r.stdout.trim() || '-'})`, { command: cmd, stderr: r.stderr, code: r.code });
    },
    async removeSecret(name) {
      const r = await ctx.run(`curl -sS --unix-socket ${SOCKET} -o /dev/null -w '%{http_code}' -X DELETE ${shQuote(api(`/secrets/${encodeURIComponent(name)}`))}`);
      return r.code === 0 && r.stdout.trim() === '204';
    },
  };
}

/**
 * What docker_stack reads before it decides, in one round trip where the host has curl: whether
 * this node manages the swarm (/info), the stack's services and its secrets. Without curl, the
 * CLI: `docker info` in the same round trip, then the view's reads.
 */
async function readSwarm(ctx: ActionContext, name: string): Promise<{ manager: boolean; state: string; view: SwarmView; services?: DockerService[]; secrets?: DockerSecret[] }> {
  const got = await engineGets(ctx, [api('/info'), api('/services', stackFilter(name)), api('/secrets', secretFilter(name))], 'docker info --format "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}"');
  if ('noCurl' in got) {
    const d = got.noCurl;
    return { manager: d.code === 0 && d.stdout.trim() === 'active true', state: d.stdout.trim() || d.stderr.trim(), view: cliSwarmView(ctx) };
  }
  const [info, services, secrets] = got.answers as [Answer | undefined, Answer, Answer];
  // No answer from /info (no docker, dockerd down, no permission, a curl that cannot do this): not a
  // manager, in curl's words, as `docker info` said it before. An answer cut short after it: an error.
  if (!info || info.status === 0 || (info.status !== 200 && got.complete)) return { manager: false, state: why(got, info), view: engineSwarmView(ctx) };
  if (!got.complete) throw new TaskError(`${ctx.host.name}: docker's Engine API (${SOCKET}) gave ${got.answers.length} of 3 answers`, { command: got.command, stderr: got.stderr, code: got.code });
  const sw = answer<{ Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean } }>(ctx, 'docker info', info).Swarm ?? {};
  const state = `${sw.LocalNodeState ?? '?'} ${sw.ControlAvailable ?? false}`;
  if (state !== 'active true') return { manager: false, state, view: engineSwarmView(ctx) };
  return {
    manager: true,
    state,
    view: engineSwarmView(ctx),
    services: answer<DockerService[]>(ctx, `cannot inspect the services of stack ${name}`, services),
    secrets: answer<DockerSecret[]>(ctx, 'cannot list docker secrets', secrets).filter((x) => x.Spec?.Name?.startsWith(`${name}_`)),
  };
}

/** The live services of the stack (none when the stack is not deployed). */
export async function liveServices(ctx: ActionContext, name: string): Promise<LiveService[]> {
  return cliSwarmView(ctx).services(name);
}

export function dockerStack(o: DockerStackOptions): Action {
  const invalid = invalidArgs('docker_stack', o);
  if (invalid) return invalid;
  const stateDir = o.stateDir ?? '/etc/phoenix/stacks';
  return {
    module: 'docker_stack',
    // It holds its own mutations back in check mode (docs/check-mode.md): the engine lets its commands through.
    checkMode: 'self',
    summary: `stack deploy ${typeof o.stack === 'function' ? '' : o.stack.name}`.trim(),
    async run(ctx): Promise<ActionResult> {
      const def = typeof o.stack === 'function' ? o.stack() : o.stack;
      const where = `stack ${def.name}`;
      // Validated before anything runs on the host.
      const plan = renderStack(def);
      const text = HEADER + plan.content;
      const path = `${stateDir}/${def.name}.yml`;

      const st = await fileState(ctx, path);
      const before = st.exists && st.type === 'file' ? (await readFile(ctx, path)).toString('utf8') : '';
      const reasons: string[] = [];
      if (st.exists && before !== text) reasons.push('compose file changed');

      const swarm = await readSwarm(ctx, def.name);
      if (!swarm.manager) {
        // In check mode the swarm may only be missing because earlier plays were not applied.
        if (ctx.check) return { changed: true, msg: `would deploy ${def.name} (this host is not a swarm manager yet)`, diff: ctx.diff ? [fileDiff(path, before, text)] : undefined };
        throw new TaskError(`${ctx.host.name}: ${where}: not a swarm manager (${swarm.state})`);
      }
      const view = swarm.view;
      const drift = liveDrift(plan, swarm.services ?? (await view.services(def.name)));
      // The secrets as read with the state (one round trip), when they were.
      const secrets = await planSecrets(swarm.secrets ? { ...view, secrets: async () => swarm.secrets! } : view, plan);
      if (secrets.missing.length) reasons.push(`secret(s) to create: ${secrets.missing.map(([, s]) => s.name).join(', ')}`);
      if (!st.exists && drift.length) reasons.push(drift.every((d) => d.endsWith(': not running')) ? 'not deployed' : `not deployed by phoenix, and live services differ: ${drift.join('; ')}`);
      if (drift.length && st.exists && before === text) reasons.push(`live services differ: ${drift.join('; ')}`);
      // (no record and live services that match: deployed the same way elsewhere, e.g. through Portainer: ok)
      if (!reasons.length) {
        if (!secrets.stale.length) return { changed: false };
        // Up to date, but an older value's secret is left (a removal that failed before).
        if (ctx.check) return { changed: true, msg: `would remove old secret(s): ${secrets.stale.join(', ')}` };
        return { changed: true, msg: (await removeStale(view, plan, secrets.stale)).join('; ') };
      }

      const diff = ctx.diff && before !== text ? [fileDiff(path, before, text)] : undefined;
      const msg = redact(reasons.join('; '));
      if (ctx.check) return { changed: true, msg: `would deploy: ${msg}`, diff };

      await must(ctx, `install -d -m 0700 ${shQuote(stateDir)}`, `cannot create ${stateDir}`);
      await createSecrets(view, plan, secrets.missing);
      const tmp = `${path}.new`;
      const deploy = `docker stack deploy --resolve-image never --prune -c ${shQuote(tmp)} ${shQuote(def.name)}`;
      await must(ctx, `umask 077 && cat > ${shQuote(tmp)}`, `cannot write ${tmp}`, { stdin: text });
      // The plan's Env, as `docker stack deploy` takes it: variables of its environment.
      const d = await ctx.run(deploy, { env: plan.env ?? {} });
      if (d.code !== 0) {
        await ctx.run(`rm -f ${shQuote(tmp)}`);
        throw new TaskError(`${where}: docker stack deploy failed; ${path} still holds the last deployed file`, { command: deploy, stderr: d.stderr, code: d.code });
      }
      // Only now is the new file "the last deployed".
      await must(ctx, `mv -f ${shQuote(tmp)} ${shQuote(path)}`, `cannot record ${path}`);

      const after = await afterDeploy(ctx, view, plan, { timeout: o.timeout, pollInterval: o.pollInterval ?? 500 }, secrets.stale);
      return { changed: true, msg: [`deployed (${msg})`, after.running, after.healthy, ...after.secrets].filter(Boolean).join('; '), diff };
    },
  };
}

/**
 * `docker stack rm`, waited for: the stack's services, the manager's containers of it and its
 * networks gone, then docker_stack's record removed (the stack is no longer docker's). Named
 * volumes are never removed by `docker stack rm`; phoenix's external secrets are not the
 * stack's objects and stay too.
 */
export async function removeDockerStack(ctx: ActionContext, name: string, stateDir = '/etc/phoenix/stacks', timeout = 120): Promise<void> {
  const f = shQuote(byStack(name));
  const cmd =
    `docker stack rm ${shQuote(name)} >/dev/null && end=$(( $(date +%s) + ${timeout} )) && ` +
    `while left="$(docker service ls -q --filter ${f}; docker ps -aq --filter ${f}; docker network ls -q --filter ${f})"; [ -n "$left" ]; do ` +
    `[ "$(date +%s)" -ge "$end" ] && { echo "still there after ${timeout}s: $left" | tr '\n' ' '; exit 1; }; sleep 0.5; done; rm -f ${shQuote(`${stateDir}/${name}.yml`)}`;
  await must(ctx, cmd, `docker stack rm ${name}`, { timeout: timeout + 30 });
}
