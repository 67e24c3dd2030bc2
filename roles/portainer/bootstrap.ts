// Portainer cannot create the stack it runs in. On a fresh swarm (no Portainer stack yet),
// `phoenix sync` starts a one-off Portainer container on the manager: the same image, arguments,
// data volume, certificate and admin password as the stack's own server, published on a spare
// port. Sync creates the stacks through it (its own stack too), then a handler removes the
// one-off, and the stack's Portainer carries on with the same database. (Real Portainer's
// database is single-writer: its in-stack server starts once the one-off has let go of it, so
// the readiness of Portainer's own stack is checked only after the hand-over.)
import { shQuote } from '../../runner/connection/shell.ts';
import { Secret } from '../../runner/secret.ts';
import type { Action, ActionContext, ActionResult } from '../../runner/types.ts';
import { TaskError } from '../../runner/types.ts';
import { PortainerClient, PortainerError } from './client.ts';
import { clientFor, portainerManages, stackReady, type SyncApiOptions } from './sync.ts';
import { removeDockerStack } from '../../stacks/docker.ts';
import type { StackPlan } from '../../stacks/plan.ts';

export interface OneOffContainer {
  /** Container name on the manager. */
  name: string;
  image: string;
  args: string[];
  /** Named volumes or absolute host paths. */
  mounts: { source: string; target: string; readOnly?: boolean }[];
  /** Secret files, written 0600 on the manager (from stdin) and mounted read-only. */
  files: { target: string; content: Secret }[];
  /** Host port -> the server's HTTPS port. */
  publish: { host: number; container: number };
}

export interface BootstrapOptions {
  /** The API as it will be once the stack runs. */
  api: SyncApiOptions;
  /** The one-off's API (same host name, the spare port). */
  bootstrapUrl: string;
  /** Portainer's own stack (a stack with this name in the swarm means Portainer is deployed). */
  stack: string;
  oneOff: OneOffContainer;
  /** Seconds to wait for an API to answer (default 120). */
  timeout?: number;
  /**
   * swarm.migrateDockerStacks: Portainer answers, but its own stack was deployed with `docker
   * stack deploy` (Portainer does not manage it): remove that stack (its data volume is kept) and
   * create it again through the one-off, as on a fresh swarm.
   */
  migrate?: { stateDir?: string };
}

/** What the bootstrap task registers for the stack tasks: the API URL to use. */
export interface BootstrapData {
  url: string;
  bootstrapped: boolean;
  /** Check mode, and no Portainer yet: nothing can be asked of an API. */
  wouldBootstrap?: boolean;
}

const FILES_DIR = '/run/phoenix-portainer-bootstrap';

async function answers(c: PortainerClient, check = false): Promise<string | undefined> {
  try {
    await c.systemStatus();
    return undefined;
  } catch (e) {
    // Check mode: the step-ca root is exported by an earlier play (site on a fresh lab) that did
    // not really run, so a missing CA file here means Portainer cannot answer yet, not a mistake.
    if (check && (e as NodeJS.ErrnoException).code === 'ENOENT') return `${(e as Error).message} (not exported yet: the step-ca play did not really run)`;
    // Not an answer from the network (e.g. the CA file is missing here): no use waiting for it.
    if (!(e instanceof PortainerError)) throw new TaskError(`Portainer API ${c.base}: ${(e as Error).message}`);
    return e.message;
  }
}

async function untilAnswers(c: PortainerClient, timeout: number, what: string): Promise<void> {
  const deadline = Date.now() + timeout * 1000;
  for (;;) {
    const why = await answers(c);
    if (!why) return;
    if (Date.now() > deadline) throw new TaskError(`${what} did not answer within ${timeout}s: ${why}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function stackInSwarm(ctx: ActionContext, stack: string): Promise<boolean> {
  const r = await ctx.run(`docker service ls -q --filter ${shQuote(`label=com.docker.stack.namespace=${stack}`)}`, { become: true });
  // Check mode before the swarm plays were applied: not a manager yet, so no stack either.
  if (r.code !== 0 && ctx.check) return false;
  if (r.code !== 0) throw new TaskError(`docker service ls on ${ctx.host.name}: ${r.stderr.trim()}`, { stderr: r.stderr, code: r.code });
  return r.stdout.trim() !== '';
}

export function dockerRunArgs(o: OneOffContainer, filesDir = FILES_DIR): string[] {
  const a = ['docker', 'run', '-d', '--name', o.name, '--label', 'phoenix.portainer-bootstrap=true', '-p', `${o.publish.host}:${o.publish.container}`];
  for (const m of o.mounts) a.push('-v', `${m.source}:${m.target}${m.readOnly ? ':ro' : ''}`);
  o.files.forEach((f, i) => a.push('-v', `${filesDir}/f${i}:${f.target}:ro`));
  a.push(o.image, ...o.args);
  return a;
}

/** Probe: Portainer answers, or its stack is in the swarm (wait for it); else start the one-off. */
export function portainerBootstrap(o: BootstrapOptions): Action {
  return {
    module: 'portainer_bootstrap',
    // It holds its own mutations back in check mode (docs/check-mode.md): the engine lets its commands through.
    checkMode: 'self',
    summary: `portainer API (a one-off Portainer when ${o.stack} is absent)`,
    async run(ctx): Promise<ActionResult> {
      const timeout = o.timeout ?? 120;
      const api = clientFor(o.api);
      const why = await answers(api, ctx.check);
      let migrating = false;
      if (!why) {
        const ok = { changed: false, msg: `Portainer answers at ${api.base}`, data: { url: o.api.url, bootstrapped: false } satisfies BootstrapData };
        if (!o.migrate) return ok;
        // Portainer manages its stack (every run after the first): ok, without asking docker on the
        // manager (its CLI ~45 ms). Otherwise as before: a stack not in the swarm is fine, one in it is
        // handed over; an API error here is raised only where it was before (the stack is in the swarm).
        const manages = await portainerManages(o.api, o.stack).catch(() => undefined);
        if (manages === true || !(await stackInSwarm(ctx, o.stack)) || (manages === undefined && (await portainerManages(o.api, o.stack)))) return ok;
        // Portainer runs from a stack deployed with docker: it cannot adopt its own stack.
        migrating = true;
        if (!ctx.check) await removeDockerStack(ctx, o.stack, o.migrate.stateDir);
      } else if (await stackInSwarm(ctx, o.stack)) {
        // Deployed: it may be starting. It must come up; sync never replaces a Portainer.
        await untilAnswers(api, timeout, `Portainer (stack ${o.stack}) at ${api.base}`);
        return { changed: false, msg: `Portainer answers at ${api.base}`, data: { url: o.api.url, bootstrapped: false } satisfies BootstrapData };
      }
      if (ctx.check)
        return {
          changed: true,
          msg: `${migrating ? `${o.stack} runs outside Portainer: would remove it (docker stack rm, data volume kept) and` : `no Portainer yet (${o.stack} absent):`} would start a one-off Portainer on :${o.oneOff.publish.host} to create the stacks`,
          data: { url: o.bootstrapUrl, bootstrapped: true, wouldBootstrap: true } satisfies BootstrapData,
        };
      // A one-off left by an interrupted run goes first.
      await ctx.run(`docker rm -f ${shQuote(o.oneOff.name)} >/dev/null 2>&1; rm -rf ${FILES_DIR}; install -d -m 0700 ${FILES_DIR}`, { become: true });
      for (const [i, f] of o.oneOff.files.entries()) {
        const w = await ctx.run(`umask 077; cat > ${FILES_DIR}/f${i}`, { become: true, stdin: f.content });
        if (w.code !== 0) throw new TaskError(`writing a secret file for the one-off Portainer: ${w.stderr.trim()}`);
      }
      const cmd = dockerRunArgs(o.oneOff).map(shQuote).join(' ');
      const r = await ctx.run(cmd, { become: true });
      if (r.code !== 0) throw new TaskError(`starting the one-off Portainer on ${ctx.host.name} failed`, { command: cmd, stderr: r.stderr, code: r.code });
      try {
        await untilAnswers(clientFor({ ...o.api, url: o.bootstrapUrl }), timeout, `the one-off Portainer at ${o.bootstrapUrl}`);
      } catch (e) {
        // Nothing was created through it: leave no one-off (nor its password file) behind.
        await ctx.run(`docker rm -f ${shQuote(o.oneOff.name)} >/dev/null 2>&1; rm -rf ${FILES_DIR}`, { become: true });
        throw e;
      }
      return {
        changed: true,
        msg: `${migrating ? `docker stack ${o.stack} removed for the hand-over (data volume kept); ` : ''}started a one-off Portainer (container ${o.oneOff.name}) at ${o.bootstrapUrl}`,
        data: { url: o.bootstrapUrl, bootstrapped: true } satisfies BootstrapData,
      };
    },
  };
}

/** Handler: remove the one-off, then Portainer's own stack must be ready at the normal URL. */
export function portainerHandover(o: { api: SyncApiOptions; plan: StackPlan; oneOff: string; timeout?: number }): Action {
  const stack = o.plan.name;
  return {
    module: 'portainer_bootstrap',
    // It holds its own mutations back in check mode (docs/check-mode.md): the engine lets its commands through.
    checkMode: 'self',
    summary: `remove the one-off Portainer, then ${stack} ready`,
    async run(ctx): Promise<ActionResult> {
      if (ctx.check) return { changed: true, msg: `would remove the one-off Portainer and wait for ${stack}` };
      const r = await ctx.run(`docker rm -f ${shQuote(o.oneOff)} >/dev/null 2>&1; rm -rf ${FILES_DIR}`, { become: true });
      if (r.code !== 0) throw new TaskError(`removing the one-off Portainer: ${r.stderr.trim()}`);
      if (!(await stackInSwarm(ctx, stack))) throw new TaskError(`one-off Portainer removed, but stack ${stack} was not created: no Portainer is left`);
      // The stack's own server may still be starting (real Portainer opens the database only now).
      await untilAnswers(clientFor(o.api), o.timeout ?? 180, `Portainer (stack ${stack}) at ${new URL(o.api.url).origin}`);
      const ready = await stackReady({ api: o.api, plan: o.plan, readinessTimeout: o.timeout }).run(ctx);
      return { changed: true, msg: `one-off Portainer removed; ${ready.msg}` };
    },
  };
}
