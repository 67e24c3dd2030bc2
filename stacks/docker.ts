// docker_stack: a swarm stack from a typed StackDefinition (stacks/), deployed with
// `docker stack deploy --resolve-image never --prune` on a manager only when something differs:
//   - the rendered compose file against the one last deployed (kept on the manager in
//     <stateDir>/<name>.yml, written atomically after a successful deploy), or
//   - the live services against the compose file (a service changed by hand is drift), or
//   - a docker secret the file names is missing (secrets are immutable: a new value is a new
//     secret name, made from stdin, never from an argument list).
// The compose file is validated against the compose spec before anything runs on the host.
// --check --diff shows the compose diff. After a deploy: every task Running and the product's
// own health endpoints answering, within a deadline (no fixed sleeps); old secrets of the
// stack that nothing uses any more are removed.
import { shQuote } from '../runner/connection/shell.ts';
import { fileDiff } from '../runner/diff.ts';
import { fileState, readFile } from '../runner/facts.ts';
import { redact } from '../runner/secret.ts';
import type { Action, ActionContext, ActionResult } from '../runner/types.ts';
import { TaskError } from '../runner/types.ts';
import { stackDrift, type LiveService } from './drift.ts';
import type { StackDefinition } from './types.ts';

export interface DockerStackOptions {
  /** The stack, or a function making it when the task runs (secrets are read then). */
  stack: StackDefinition | (() => StackDefinition);
  /** Where the manager keeps the compose file as last deployed (default /etc/phoenix/stacks). */
  stateDir?: string;
  /** Seconds for every task to be Running and the health endpoints to answer (default 180). */
  timeout?: number;
}

const HEADER = '# managed by phoenix (docker_stack): the compose file as last deployed; edits are drift\n';
const SECRET_LABEL = 'phoenix.stack';

async function must(ctx: ActionContext, cmd: string, what: string, opts: Parameters<ActionContext['run']>[1] = {}) {
  const r = await ctx.run(cmd, opts);
  if (r.code !== 0) throw new TaskError(`${ctx.host.name}: ${what}`, { command: cmd, stderr: r.stderr, stdout: r.stdout, code: r.code });
  return r;
}

/** The live services of the stack (none when the stack is not deployed). */
export async function liveServices(ctx: ActionContext, name: string): Promise<LiveService[]> {
  const cmd = `ids=$(docker service ls -q --filter label=com.docker.stack.namespace=${shQuote(name)}) && { [ -z "$ids" ] || docker service inspect --format '{{json .}}' $ids; }`;
  const r = await must(ctx, cmd, `cannot inspect the services of stack ${name}`);
  return r.stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as LiveService);
}

async function missingSecrets(ctx: ActionContext, def: StackDefinition): Promise<string[]> {
  const names = Object.values(def.secrets ?? {}).map((s) => s.name);
  if (!names.length) return [];
  const r = await must(ctx, `docker secret ls --format '{{.Name}}'`, 'cannot list docker secrets');
  const have = new Set(r.stdout.split('\n').map((l) => l.trim()));
  return names.filter((n) => !have.has(n));
}

/** Polls until every service of the stack has all its tasks Running on the deployed spec. */
async function tasksRunning(ctx: ActionContext, def: StackDefinition, deadline: number): Promise<string> {
  const name = def.name;
  const want = Object.keys(def.compose.services).map((k) => `${name}_${k}`);
  let last = '';
  for (;;) {
    const r = await must(
      ctx,
      `docker service ls --filter label=com.docker.stack.namespace=${shQuote(name)} --format '{{.Name}} {{.Replicas}}'; echo ---; ` +
        `for s in $(docker service ls -q --filter label=com.docker.stack.namespace=${shQuote(name)}); do docker service inspect --format '{{.Spec.Name}} {{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' "$s"; ` +
        `docker service ps --no-trunc --filter desired-state=running --format '{{.Name}} {{.CurrentState}} | {{.Error}}' "$s" | head -n 5; done`,
      `cannot read the tasks of stack ${name}`,
    );
    const [ls, detail = ''] = r.stdout.split('---\n');
    const reps = new Map(
      ls
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(' ') as [string, string]),
    );
    const pending: string[] = [];
    for (const s of want) {
      const m = /^(\d+)\/(\d+)/.exec(reps.get(s) ?? '');
      if (!m) pending.push(`${s}: no service`);
      else if (m[2] === '0' || m[1] !== m[2]) pending.push(`${s}: ${m[1]}/${m[2]} running`);
    }
    const updating = detail
      .split('\n')
      .map((l) => /^(\S+) (updating|paused|rollback_started|rollback_paused|rollback_completed)$/.exec(l))
      .filter((m): m is RegExpExecArray => !!m);
    const failedUpdate = updating.find((m) => m[2] !== 'updating');
    if (failedUpdate) throw new TaskError(`stack ${name}: the update of ${failedUpdate[1]} ended ${failedUpdate[2]}`, { stdout: detail });
    for (const m of updating) pending.push(`${m[1]}: updating`);
    if (!pending.length) return `${want.length} service(s) running`;
    // The newest task errors ("No such image", a constraint no node meets) make the timeout message useful.
    last = `${pending.join('; ')}${detail.includes('| ') ? `\n${detail.trim()}` : ''}`;
    if (Date.now() > deadline) throw new TaskError(`stack ${name}: not every task is Running within the deadline: ${last}`);
    await ctx.run('sleep 0.5');
  }
}

async function healthy(ctx: ActionContext, def: StackDefinition, deadline: number): Promise<void> {
  for (const h of def.health ?? []) {
    const want = h.status ?? 200;
    const probe = `curl -sS -o /dev/null -w '%{http_code}' --max-time 3 ${shQuote(h.url)}`;
    for (;;) {
      const r = await ctx.run(probe);
      if (r.stdout.trim() === String(want)) break;
      if (Date.now() > deadline)
        throw new TaskError(`stack ${def.name}: ${h.what} (${h.url}) did not answer ${want} within the deadline (last: ${r.stdout.trim() || r.stderr.trim()})`);
      await ctx.run('sleep 0.5');
    }
  }
}

export function dockerStack(o: DockerStackOptions): Action {
  const stateDir = o.stateDir ?? '/etc/phoenix/stacks';
  return {
    module: 'docker_stack',
    summary: `stack deploy ${typeof o.stack === 'function' ? '' : o.stack.name}`.trim(),
    async run(ctx): Promise<ActionResult> {
      const def = typeof o.stack === 'function' ? o.stack() : o.stack;
      const where = `stack ${def.name}`;
      // Validated before anything runs on the host. (Loaded on first use: the validator is 400 KB.)
      const { ComposeValidationError, renderCompose, validateCompose } = await import('./compose.ts');
      try {
        validateCompose(def.compose, where);
      } catch (e) {
        if (e instanceof ComposeValidationError) throw new TaskError(e.message);
        throw e;
      }
      const text = HEADER + renderCompose(def.compose);
      const path = `${stateDir}/${def.name}.yml`;

      const st = await fileState(ctx, path);
      const before = st.exists && st.type === 'file' ? (await readFile(ctx, path)).toString('utf8') : '';
      const reasons: string[] = [];
      if (st.exists && before !== text) reasons.push('compose file changed');

      const docker = await ctx.run('docker info --format "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}"');
      if (docker.code !== 0 || docker.stdout.trim() !== 'active true') {
        // In check mode the swarm may only be missing because earlier plays were not applied.
        if (ctx.check) return { changed: true, msg: `would deploy ${def.name} (this host is not a swarm manager yet)`, diff: ctx.diff ? [fileDiff(path, before, text)] : undefined };
        throw new TaskError(`${ctx.host.name}: ${where}: not a swarm manager (${docker.stdout.trim() || docker.stderr.trim()})`);
      }
      const drift = stackDrift(def.compose, def.name, await liveServices(ctx, def.name));
      const missing = await missingSecrets(ctx, def);
      if (missing.length) reasons.push(`secret(s) to create: ${missing.join(', ')}`);
      if (!st.exists && drift.length) reasons.push(drift.every((d) => d.endsWith(': not running')) ? 'not deployed' : `not deployed by phoenix, and live services differ: ${drift.join('; ')}`);
      if (drift.length && st.exists && before === text) reasons.push(`live services differ: ${drift.join('; ')}`);
      // (no record and live services that match: deployed the same way elsewhere, e.g. by phoenix sync: ok)
      if (!reasons.length) return { changed: false };

      const diff = ctx.diff && before !== text ? [fileDiff(path, before, text)] : undefined;
      const msg = redact(reasons.join('; '));
      if (ctx.check) return { changed: true, msg: `would deploy: ${msg}`, diff };

      const deadline = Date.now() + (o.timeout ?? 180) * 1000;
      await must(ctx, `install -d -m 0700 ${shQuote(stateDir)}`, `cannot create ${stateDir}`);
      for (const [key, s] of Object.entries(def.secrets ?? {})) {
        if (!missing.includes(s.name)) continue;
        // The value goes on stdin ("-"): never on an argument list.
        await must(ctx, `docker secret create --label ${SECRET_LABEL}=${shQuote(def.name)} --label phoenix.key=${shQuote(key)} ${shQuote(s.name)} -`, `cannot create docker secret ${s.name}`, {
          stdin: s.value,
        });
      }
      const tmp = `${path}.new`;
      const deploy = `docker stack deploy --resolve-image never --prune -c ${shQuote(tmp)} ${shQuote(def.name)}`;
      await must(ctx, `umask 077 && cat > ${shQuote(tmp)}`, `cannot write ${tmp}`, { stdin: text });
      const d = await ctx.run(deploy);
      if (d.code !== 0) {
        await ctx.run(`rm -f ${shQuote(tmp)}`);
        throw new TaskError(`${where}: docker stack deploy failed; ${path} still holds the last deployed file`, { command: deploy, stderr: d.stderr, code: d.code });
      }
      // Only now is the new file "the last deployed".
      await must(ctx, `mv -f ${shQuote(tmp)} ${shQuote(path)}`, `cannot record ${path}`);

      const running = await tasksRunning(ctx, def, deadline);
      await healthy(ctx, def, deadline);

      // Secrets of this stack that nothing refers to any more (an old value): removed when unused.
      const keep = new Set(Object.values(def.secrets ?? {}).map((s) => s.name));
      const old = await ctx.run(`docker secret ls --filter label=${SECRET_LABEL}=${shQuote(def.name)} --format '{{.Name}}'`);
      for (const n of old.stdout.split('\n').map((l) => l.trim()).filter((n) => n && !keep.has(n))) await ctx.run(`docker secret rm ${shQuote(n)}`);

      return { changed: true, msg: `deployed (${msg}); ${running}${def.health?.length ? `; ${def.health.map((h) => h.what).join(', ')} ok` : ''}`, diff };
    },
  };
}
