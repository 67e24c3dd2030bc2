// replace: "replace, validate, restart, roll back" for a service's config files, in one task.
// Like Ansible's `template`/`copy` with `validate:` plus a restart handler, but the restart runs
// in the task and the task waits until the service has come back; when it does not, the
// previous files are put back, the service is restarted on them, and the task fails with the
// service's own error (its journal, the readiness probe's output), saying it rolled back.
// docs/rollback.md has the whole story and how it differs from Ansible.
import { createHash } from 'node:crypto';
import { isAbsolute } from 'node:path';
import { shQuote } from '../connection/shell.ts';
import { fileDiff, SECRET_CONTENT } from '../diff.ts';
import { normalizeMode, ownerSpec, parentOf, readFile } from '../facts.ts';
import { Secret, isSecret, redact } from '../secret.ts';
import type { Action, ActionContext, ActionResult, FileDiff } from '../types.ts';
import { NotYetError, TaskError } from '../types.ts';
import { chmodArg, idDiffers, pathState } from './attrs.ts';

export type ReplaceContent = string | Buffer | Secret;

export interface ReplaceFile {
  dest: string;
  /**
   * The new content. A function gets the file's current content (undefined when it does not
   * exist) and returns the new one: a merge into a file others write too (daemon.json).
   * A Secret is written from stdin, shown nowhere, and defaults to mode 0600.
   */
  content: ReplaceContent | ((current: Buffer | undefined) => ReplaceContent);
  mode?: string | number;
  owner?: string;
  group?: string;
  /** A check run on the new file (a temp file beside dest) before anything goes live; %s is its path. */
  validate?: string;
}

/** How to tell the service has come back: polled on the host until it passes or the timeout ends. */
export interface Readiness {
  /** An HTTP(S) URL fetched with curl on the host (TLS verified; `ca` a PEM on the host). */
  url?: string;
  /** The status the URL must answer (default 200). */
  status?: number;
  ca?: string;
  /** A TCP port that must accept a connection (on `host`, default 127.0.0.1). */
  port?: number;
  host?: string;
  /** A shell command that exits 0 once the service serves. */
  command?: string;
}

export interface ReplaceService {
  /** The systemd unit: its state before, restart, journal (the service's own error). */
  unit?: string;
  /** A command that restarts the service instead of `systemctl restart <unit>` (needed without a unit). */
  restart?: string;
  /** `systemctl reload` instead of restart. */
  reload?: boolean;
  /** `systemctl daemon-reload` before the restart and after a rollback (a unit file or drop-in is among the files). */
  daemonReload?: boolean;
  /**
   * What "came back" means beyond the unit being active. A function is given the content of the
   * first file as it is live at the time (the new one, then after a rollback the previous one),
   * e.g. to read the port the config says the service answers on.
   */
  ready?: Readiness | ((content: string) => Readiness | undefined);
  /** Seconds to wait for it to come back (default 60). */
  timeout?: number;
  /**
   * When the unit is not running before (or does not exist yet: a later task installs or starts
   * it): 'leave' (default) only replaces the files; 'start' starts it and treats a failure as
   * any other (rolled back, stopped again).
   */
  whenStopped?: 'leave' | 'start';
}

export interface ReplaceOptions {
  /** The files that go live together: one restart, rolled back together. */
  files: ReplaceFile[];
  service?: ReplaceService;
  /** The service's name in messages (default: the unit). */
  name?: string;
}

const DIFF_LIMIT = 256 * 1024;
/** Beside each target while the service is tried on the new file; removed once it answers. */
export const PREVIOUS_SUFFIX = '.phx-prev';

const isText = (b: Buffer) => !b.subarray(0, 8192).includes(0);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const bytes = (c: ReplaceContent) => (c instanceof Secret ? Buffer.from(c.reveal()) : Buffer.isBuffer(c) ? c : Buffer.from(c));

interface Planned {
  f: ReplaceFile;
  data: Buffer;
  sensitive: boolean;
  existed: boolean;
  before?: Buffer;
  wantMode?: string;
  why: string;
}

/** The one-line shell test of a readiness probe (exit 0: ready), each try bounded by `each` seconds. */
export function readinessTest(r: Readiness, each = 3): string {
  const parts: string[] = [];
  if (r.url) parts.push(`[ "$(curl -sS -o /dev/null -w '%{http_code}' --max-time ${each} ${r.ca ? `--cacert ${shQuote(r.ca)} ` : ''}${shQuote(r.url)})" = ${r.status ?? 200} ]`);
  if (r.port) parts.push(`timeout ${each} bash -c ${shQuote(`exec 3<>/dev/tcp/${r.host ?? '127.0.0.1'}/${r.port}`)}`);
  if (r.command) parts.push(`{ ${r.command}\n}`);
  return parts.length ? parts.join(' && ') : 'true';
}

function describe(r: Readiness | undefined): string {
  if (!r) return 'is active';
  return [r.url ? `answers ${r.url}${r.status && r.status !== 200 ? ` with ${r.status}` : ''}` : '', r.port ? `accepts ${r.host ?? '127.0.0.1'}:${r.port}` : '', r.command ? `passes \`${r.command}\`` : ''].filter(Boolean).join(' and ');
}

export interface CameBack {
  ok: boolean;
  /** The service's own error when it did not come back: its last journal lines since the restart and the probe's output. */
  error?: string;
  /** The journal lines and the probe's last output, for the task's detail. */
  log?: string;
}

/**
 * Restarts (or reloads, or starts) the service and waits, bounded, until it has come back:
 * the unit active (not failed, not waiting to be restarted by systemd) and `ready` passing.
 * One remote loop; stops early when the unit has exited. Used by `replace` and by roles with a
 * specialised file scheme (step-ca's key rotation) so every restart reports the same way.
 */
export async function restartAndWait(ctx: ActionContext, s: ReplaceService, ready: Readiness | undefined, how: 'restart' | 'start' = 'restart'): Promise<CameBack> {
  const u = s.unit ? shQuote(s.unit) : undefined;
  const timeout = s.timeout ?? 60;
  const kick =
    how === 'start'
      ? `systemctl start ${u}`
      : s.restart ?? (s.reload ? `systemctl reload ${u}` : `systemctl restart ${u}`);
  const unitUp = u
    ? `st=$(systemctl show -p ActiveState --value ${u}); sub=$(systemctl show -p SubState --value ${u}); ` +
      // Exited (failed, or waiting for systemd's Restart=): it will not come up on this config.
      `if [ "$st" = failed ] || [ "$sub" = auto-restart ]; then echo "phx: ${s.unit} is $st ($sub)" >&2; exit 2; fi; `
    : '';
  const test = readinessTest(ready ?? {}, 3);
  const script = [
    `since=$(date +%s); echo "phx-since $since"`,
    s.daemonReload ? 'systemctl daemon-reload || exit 3' : '',
    // A unit that failed to start several times (a rollback's restart) is held by systemd's start limit.
    u ? `systemctl reset-failed ${u} 2>/dev/null` : '',
    `${kick} || exit 3`,
    `end=$(( since + ${Math.ceil(timeout)} ))`,
    `while :; do ${unitUp}${u ? `if [ "$st" = active ] && ` : 'if '}out=$( { ${test}; } 2>&1 ); then exit 0; fi; ` +
      `[ "$(date +%s)" -ge "$end" ] && { printf '%s\\n' "$out" >&2; exit 1; }; sleep 0.25; done`,
  ]
    .filter(Boolean)
    .join('\n');
  const r = await ctx.run(script, { timeout: timeout + 60 });
  if (r.code === 0) return { ok: true };
  const since = /phx-since (\d+)/.exec(r.stdout)?.[1];
  const probeOut = r.stderr.replace(/^phx: .*\n?/m, '').trim();
  let journal = '';
  if (s.unit && since) {
    // Only what the service itself wrote since the restart, not systemd's lines about the unit.
    const j = await ctx.probe(`journalctl _SYSTEMD_UNIT=${shQuote(s.unit.includes('.') ? s.unit : `${s.unit}.service`)} --since @${since} --no-pager -o cat 2>/dev/null | tail -n 20`);
    journal = j.stdout.trim();
    if (!journal) journal = (await ctx.probe(`journalctl -u ${u} --since @${since} --no-pager -o cat 2>/dev/null | tail -n 20`)).stdout.trim();
  }
  const lines = journal.split('\n').filter((l) => l.trim());
  const said = lines.filter((l) => /error|invalid|cannot|can't|failed|fatal|refus|denied|in use/i.test(l)).pop() ?? lines.pop();
  const state = /^phx: (.*)$/m.exec(r.stderr)?.[1];
  const what =
    r.code === 3
      ? `\`${kick}\` failed`
      : r.code === 2
        ? (state ?? 'exited')
        : `no answer within ${timeout}s (it ${describe(ready)} not)`;
  const error = [said?.trim(), what, r.code === 1 && probeOut && !said ? probeOut.split('\n').pop() : ''].filter(Boolean).join('; ');
  return { ok: false, error, log: [journal, probeOut].filter(Boolean).join('\n') };
}

/** Current state of the unit: whether it runs (active, activating, reloading), and whether it exists. */
async function unitRunning(ctx: ActionContext, unit: string): Promise<{ exists: boolean; running: boolean }> {
  const r = await ctx.probe(`systemctl show -p LoadState -p ActiveState -- ${shQuote(unit)}`);
  const props = Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  return { exists: r.code === 0 && props.LoadState !== 'not-found' && props.LoadState !== '', running: ['active', 'activating', 'reloading'].includes(props.ActiveState ?? '') };
}

function checkOptions(o: ReplaceOptions): void {
  if (!o.files?.length) throw new Error('replace: give at least one file');
  for (const f of o.files) {
    if (!f.dest || !isAbsolute(f.dest)) throw new Error(`replace: dest ${JSON.stringify(f.dest)} must be an absolute path`);
    if (f.dest.endsWith('/')) throw new Error(`replace ${f.dest}: dest ends with "/": give the path of the file to write`);
    if (f.content === undefined) throw new Error(`replace ${f.dest}: give the content`);
    normalizeMode(f.mode, `replace ${f.dest}`);
  }
  const s = o.service;
  if (s && !s.unit && !s.restart) throw new Error(`replace ${o.files[0]!.dest}: service needs a unit or a restart command`);
  if (s?.reload && s.restart) throw new Error(`replace ${o.files[0]!.dest}: service: give reload or restart, not both`);
  if (s?.timeout !== undefined && !(s.timeout > 0)) throw new Error(`replace ${o.files[0]!.dest}: service.timeout must be a positive number of seconds`);
}

export function replace(o: ReplaceOptions): Action {
  checkOptions(o);
  const s = o.service;
  const name = o.name ?? s?.unit ?? 'the service';
  return {
    module: 'replace',
    summary: `replace ${o.files.map((f) => f.dest).join(', ')}${s ? ` (restart ${name}, rolled back if it does not come back)` : ''}`,
    async run(ctx): Promise<ActionResult> {
      const host = ctx.host.name;
      // Probe every file: what it holds now, and what would change.
      const plans: Planned[] = [];
      let firstCurrent: Buffer | undefined;
      for (const f of o.files) {
        const where = `${host}: ${f.dest}`;
        const st = await pathState(ctx, f.dest);
        if (st.exists && st.type === 'directory') throw new TaskError(`${where}: is a directory; give the path of the file to write`);
        if (st.exists && st.type === 'link') throw new TaskError(`${where}: is a symlink (-> ${st.target}); give the path of the file it points to`);
        if (st.exists && st.type !== 'file') throw new TaskError(`${where}: exists and is not a regular file`);
        const current = st.exists ? await readFile(ctx, f.dest) : undefined;
        if (f === o.files[0]) firstCurrent = current;
        const c = typeof f.content === 'function' ? f.content(current) : f.content;
        const data = bytes(c);
        const sensitive = isSecret(c);
        const mode = normalizeMode(f.mode, `replace ${f.dest}`);
        const wantMode = mode ?? (sensitive ? '0600' : st.exists ? undefined : '0644');
        const why: string[] = [];
        if (!st.exists) why.push('created');
        else if (st.sha256 !== sha256(data)) why.push('content changed');
        if (st.exists && wantMode && st.mode !== wantMode) why.push(`mode ${st.mode} -> ${wantMode}`);
        if (st.exists && idDiffers(f.owner, st.owner, st.uid)) why.push(`owner ${st.owner} -> ${f.owner}`);
        if (st.exists && idDiffers(f.group, st.group, st.gid)) why.push(`group ${st.group} -> ${f.group}`);
        if (!why.length) continue;
        if (!st.parentExists) throw new NotYetError(`${where}: directory ${parentOf(f.dest)} does not exist`);
        plans.push({ f, data, sensitive, existed: st.exists, before: current, wantMode, why: why.join(', ') });
      }
      if (!plans.length) return { changed: false };

      let diff: FileDiff[] | undefined;
      if (ctx.diff) {
        diff = plans
          .filter((p) => !p.existed || p.before === undefined || sha256(p.before) !== sha256(p.data))
          .map((p) => {
            const show = (b: Buffer | undefined) => (b === undefined ? '' : p.sensitive ? SECRET_CONTENT : b.length > DIFF_LIMIT || !isText(b) ? `[${b.length} bytes, not shown]\n` : b.toString('utf8'));
            return fileDiff(p.f.dest, show(p.before), show(p.data));
          });
      }
      const svc = s?.unit ? await unitRunning(ctx, s.unit) : { exists: true, running: true };
      const restart = s && (svc.running || (s.whenStopped === 'start' && svc.exists)) ? (svc.running ? (s.reload ? 'reload' : 'restart') : 'start') : undefined;
      const what = plans.map((p) => (o.files.length > 1 ? `${p.f.dest} ${p.why}` : p.why)).join('; ');
      const notRunning = s && !restart ? `; ${name} ${svc.exists ? 'is not running' : 'is not installed yet'}: not started` : '';
      const plan: ActionResult = { changed: true, diff, msg: `${what}${restart ? `; would ${restart} ${name}` : notRunning}` };

      return ctx.change(plan, async () => {
        // 1. Each new file to a temp file beside its target, with its mode and owner, validated there.
        const temps: string[] = [];
        const dropTemps = async () => {
          if (temps.length) await ctx.run(`rm -f -- ${temps.map(shQuote).join(' ')}`);
        };
        for (const p of plans) {
          const d = shQuote(p.f.dest);
          const own = ownerSpec(p.f);
          const lines = [
            'set -e',
            `t=$(mktemp ${shQuote(`${parentOf(p.f.dest)}/.phx-`)}XXXXXX)`,
            `trap 'rm -f "$t"' EXIT`,
            `cat > "$t"`,
            p.wantMode ? `chmod ${chmodArg(p.wantMode)} "$t"` : `chmod --reference=${d} "$t"`,
            own ? `chown ${shQuote(own)} "$t"` : p.existed ? `chown --reference=${d} "$t"` : ':',
          ];
          if (p.f.validate) {
            const v = p.f.validate.includes('%s') ? p.f.validate.split('%s').join('"$t"') : `${p.f.validate} "$t"`;
            lines.push('set +e', `out=$( { ${v}\n} 2>&1 ); rc=$?`, 'set -e', `if [ "$rc" -ne 0 ]; then printf 'phx-validate %s %s\\n' "$rc" "$t" >&2; printf '%s' "$out" >&2; exit 3; fi`);
          }
          lines.push('trap - EXIT', 'echo "phx-temp $t"');
          const r = await ctx.run(lines.join('\n'), { stdin: p.sensitive ? new Secret(p.data.toString('utf8'), p.f.dest) : p.data });
          const head = r.code === 3 && p.f.validate ? /(?:^|\n)phx-validate (\d+) (.*)\n/.exec(r.stderr) : null;
          if (head) {
            await dropTemps();
            const out = r.stderr.slice(head.index + head[0].length).split(head[2]!).join(`${p.f.dest} (new content)`).trim();
            const last = out.split('\n').filter((l) => l.trim()).slice(-3).join(' ');
            throw new TaskError(`${host}: the new ${p.f.dest} failed validation (exit status ${head[1]})${last ? `: ${last}` : ''}; nothing was replaced`, {
              command: p.f.validate,
              stderr: out || undefined,
              code: Number(head[1]),
            });
          }
          const t = /phx-temp (\S+)/.exec(r.stdout)?.[1];
          if (r.code !== 0 || !t) {
            await dropTemps();
            throw new TaskError(`${host}: cannot write the new ${p.f.dest}; nothing was replaced`, { command: `write ${p.f.dest}`, stderr: r.stderr, code: r.code });
          }
          temps.push(t);
        }
        // 2. Keep the previous files (a hard link: the same inode, owner and mode), then rename the new ones in.
        // A previous file left by an interrupted run is stale: it goes first.
        const swap = [
          `rm -f -- ${plans.map((p) => shQuote(p.f.dest + PREVIOUS_SUFFIX)).join(' ')}`,
          ...plans.map((p, i) => {
            const d = shQuote(p.f.dest);
            return `${p.existed ? `ln -f ${d} ${shQuote(p.f.dest + PREVIOUS_SUFFIX)} && ` : ''}mv -f ${shQuote(temps[i]!)} ${d}`;
          }),
        ].join(' && ');
        const sw = await ctx.run(`set -e; ${swap}`);
        if (sw.code !== 0) {
          // Whatever was renamed is put back before failing.
          await ctx.run(restoreScript(plans));
          await dropTemps();
          throw new TaskError(`${host}: cannot put the new ${plans.map((p) => p.f.dest).join(', ')} in place; the previous files are back`, { stderr: sw.stderr, code: sw.code });
        }
        const dropPrevious = () => ctx.run(`rm -f -- ${plans.map((p) => shQuote(p.f.dest + PREVIOUS_SUFFIX)).join(' ')}`);
        const result = { changed: true as const, diff };
        if (!s || !restart) {
          await dropPrevious();
          return { ...result, msg: `${what}${notRunning}` };
        }
        // 3. Restart and wait until it has come back.
        const first = (which: 'new' | 'previous') => {
          const p0 = plans.find((p) => p.f === o.files[0]);
          const content = p0 ? (which === 'new' ? p0.data : p0.before) : firstCurrent;
          return readinessFor(s, content?.toString('utf8'));
        };
        const up = await restartAndWait(ctx, s, first('new'), restart === 'start' ? 'start' : 'restart');
        if (up.ok) {
          await dropPrevious();
          return { ...result, msg: `${what}; ${name} ${restart === 'start' ? 'started' : `${restart}ed`} and ${describe(first('new'))}` };
        }
        // 4. It did not come back: the previous files, and the service as it was.
        const back = await ctx.run(restoreScript(plans));
        let again: CameBack;
        if (back.code !== 0) again = { ok: false, error: `restoring the files failed: ${back.stderr.trim()}` };
        else if (restart === 'start') {
          const stop = await ctx.run(`${s.daemonReload ? 'systemctl daemon-reload; ' : ''}systemctl stop ${shQuote(s.unit!)}`);
          again = stop.code === 0 ? { ok: true } : { ok: false, error: stop.stderr.trim() };
        } else again = await restartAndWait(ctx, s, first('previous'));
        const files = plans.map((p) => (p.existed ? `the previous ${p.f.dest} is back` : `the new ${p.f.dest} is removed`)).join(', ');
        const state = restart === 'start' ? `${name} is stopped again, as it was` : again.ok ? `${name} ${describe(first('previous'))} again` : `${name} does NOT come back on the previous config either: ${again.error}`;
        throw new TaskError(
          `${name} on ${host} did not come back after ${plans.map((p) => p.f.dest).join(', ')} changed: ${up.error}; rolled back: ${back.code === 0 ? files : `restoring FAILED: ${back.stderr.trim()}`}; ${state}`,
          { command: restart === 'start' ? `systemctl start ${s.unit}` : (s.restart ?? `systemctl ${restart} ${s.unit}`), stderr: redact(up.log ?? '') || undefined },
        );
      });
    },
  };
}

function readinessFor(s: ReplaceService, content: string | undefined): Readiness | undefined {
  if (typeof s.ready !== 'function') return s.ready;
  return content === undefined ? undefined : s.ready(content);
}

/** Puts each previous file back (or removes a file that did not exist before). */
function restoreScript(plans: Planned[]): string {
  return plans
    .map((p) => {
      const d = shQuote(p.f.dest);
      const prev = shQuote(p.f.dest + PREVIOUS_SUFFIX);
      return p.existed ? `{ [ ! -e ${prev} ] || mv -f ${prev} ${d}; }` : `rm -f ${d}`;
    })
    .join(' && ');
}
