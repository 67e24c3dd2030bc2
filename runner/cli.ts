// Flags -> options, shared by every playbook: `npx phoenix site --tags nginx --check`.
//
// What only a run needs (the engine, connections, the report, the agent's client, tsc for
// --syntax-check) is imported when the run starts, not when the playbook loads: a playbook's
// imports are loaded before any of its code runs, and through `npx zx` (Node strips the types of
// every module it loads) each module costs its stripping and compiling. Loaded later, they come
// from V8's compile cache (below) on every run but the first.
import { parseArgs } from 'node:util';
import { existsSync, readFileSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Playbook } from './dsl.ts';
import type { PlayRecord } from './engine.ts';
import { InventoryError, loadInventory, resolveInventory, type Inventory, type ResolvedInventory } from './inventory.ts';
import type { JsonReport, Out } from './report.ts';
import { redact } from './secret.ts';
import { markStarted } from './load-errors.mjs';
import { resolvePlan, SelectionError, startAt, type Selection } from './selection.ts';
import { parseDuration } from './agent/paths.mjs';
import type { AgentClient } from './agent/client.ts';

// Node >= 22.1: modules loaded from here on (the run's own, above, and the playbook's lazy
// imports) are compiled (and, on Node >= 22.18, type-stripped) once and then read from this cache,
// as runner/launch.mjs does for the whole bundle (there the cache is on already).
const enableCompileCache = (nodeModule as { enableCompileCache?: (dir: string) => unknown }).enableCompileCache;
// A user's own NODE_COMPILE_CACHE (a directory) wins; NODE_DISABLE_COMPILE_CACHE=1 turns it off.
if (typeof enableCompileCache === 'function' && process.env.PHOENIX_BUNDLE !== '0' && !process.env.NODE_DISABLE_COMPILE_CACHE) {
  try {
    enableCompileCache(process.env.NODE_COMPILE_CACHE || join(dirname(fileURLToPath(import.meta.url)), '..', 'node_modules', '.cache', 'phoenix', 'v8'));
  } catch {
    /* best effort */
  }
}

export const EXIT = {
  OK: 0,
  /** An unexpected error inside phoenix itself (a bug in phoenix, not in the playbook). */
  INTERNAL: 1,
  /** At least one host failed a task. */
  FAILED: 2,
  /** At least one host was unreachable (and none failed). */
  UNREACHABLE: 3,
  /** Bad input: unknown flag, tag or host, invalid inventory, a mistake in the playbook's code while loading. Nothing ran. */
  USAGE: 4,
  /** --check --detailed-exitcode: every host ok, and changes are pending (drift). */
  CHANGES: 5,
  /** Ctrl-C (SIGINT) stopped the run: 128 + 2, as shells report it. */
  INTERRUPTED: 130,
} as const;

export interface RunOptions extends Selection {
  inventory?: string | Inventory<any>;
  /** The playbook's file: phoenix's own inventories are found by name only for phoenix's own playbooks (default: the script run). */
  playbookFile?: string;
  check?: boolean;
  /** With check: exit 5 when changes are pending, 0 only when nothing would change. */
  detailedExitcode?: boolean;
  diff?: boolean;
  forks?: number;
  json?: string;
  acceptNewHostKeys?: boolean;
  /** Overrides the inventory's known_hosts file. */
  knownHosts?: string;
  listTasks?: boolean;
  listHosts?: boolean;
  listTags?: boolean;
  /** Plan, check the arguments and type-check the playbook's files with tsc; touch no host. */
  syntaxCheck?: boolean;
  /** -e/--extra-vars, merged: they override every inventory var (Ansible's precedence). */
  extraVars?: Record<string, unknown>;
  /** -v: each task's stdout and stderr; -vv: the commands run on the host too. */
  verbose?: number;
  /** Force plain output even on a terminal. */
  plain?: boolean;
  /**
   * true (--agent): lease SSH connections from the warm-connection agent (docs/agent.md), starting
   * it when none runs; false (--no-agent): connect directly. Default: $PHOENIX_AGENT=1 turns it on.
   */
  agent?: boolean;
  /** How long the agent holds a connection after its last run: "10m", "90s", seconds (default 10m; $PHOENIX_AGENT_IDLE). */
  agentIdle?: string | number;
  out?: Out;
  /** Where interrupt notices go (default stderr). */
  err?: Out;
  color?: boolean;
}

export interface RunResult {
  exitCode: number;
  plays: PlayRecord[];
  recap: ReturnType<typeof import('./report.ts').recap>;
}

const HELP = `usage: node --import=phoenix/boot <playbook>.ts [options]   (or npx phoenix site ..., npx zx <playbook>.ts on Node >= 22.18)

  -i, --inventory PATH       inventory file (.ts/.yaml/.yml/.json), a folder holding inventory.*, or a
                             name: ./inventories/NAME.*. Default: ./inventory.ts (.yaml, .yml, .json)
  -l, --limit PATTERN        only these hosts: names, groups, globs (vm*), a:b union, a:&b intersection,
                             a:!b exclusion, ~regex, @file (one pattern per line)
  -t, --tags A,B             only tasks carrying one of these tags (a role's name is its tag)
      --skip-tags A,B        leave out tasks carrying one of these tags
  -e, --extra-vars K=V|@FILE set vars over every inventory var: key=value (value read as YAML/JSON),
                             a JSON/YAML object, or @file.yaml|json; repeatable, later ones win
      --start-at-task NAME   start at the first task of this name ("task" or "role : task")
  -C, --check                dry run: probe everything, change nothing, report what would change
      --detailed-exitcode    with --check: exit 5 when changes are pending, 0 when none
  -D, --diff                 show a unified diff of every file content change (secrets masked)
  -v, --verbose              each task's stdout and stderr; -vv: the commands run too (secrets masked)
  -f, --forks N              hosts at once (default 100)
      --json FILE            write the whole run as JSON (secrets masked)
      --list-hosts           print the inventory file and the hosts each play would run on, and exit
      --list-tasks           print the tasks each play would run, and exit
      --list-tags            print the tags of the tasks each play would run, and exit
      --syntax-check         plan, check the arguments, type-check the playbook's files (tsc), and exit
      --accept-new-host-keys trust and record the key of a host missing from known_hosts
                             (a changed key is always refused)
      --known-hosts FILE     known_hosts file (default: the inventory's, else ~/.ssh/known_hosts)
      --plain                plain lines even on a terminal
      --agent                keep SSH connections warm between runs in a per-user agent (docs/agent.md);
                             also PHOENIX_AGENT=1. The recap says which hosts were reused
      --no-agent             connect directly, even with PHOENIX_AGENT=1
      --agent-idle DURATION  how long the agent holds a connection after its last run (10m, 90s;
                             default 10m, or PHOENIX_AGENT_IDLE)
  -h, --help                 this text

exit codes: 0 ok, 1 a bug in phoenix itself, 2 a host failed, 3 a host unreachable (none failed),
            4 bad input, nothing ran: an unknown flag, tag or host, an invalid inventory, or a
              mistake in the playbook's code while it loads (reported as file:line: message),
            5 changes pending (--check --detailed-exitcode; 2 and 3 take precedence),
            130 interrupted by Ctrl-C (takes precedence over all others)

Ctrl-C once: no new task starts; running ones finish (within their timeouts), then the recap.
Ctrl-C again: running commands are killed on the hosts (their whole process groups).`;

/** The playbook's own arguments: what follows the script in `zx script.ts ...` or `tsx script.ts ...`. */
export function scriptArgs(argv = process.argv): string[] {
  const i = scriptIndex(argv);
  return i >= 0 ? argv.slice(i + 1) : argv.slice(2);
}

function scriptIndex(argv: string[]): number {
  return argv.findIndex((a, k) => k > 0 && /\.(ts|mts|js|mjs)$/.test(a) && existsSync(resolve(a)) && !/node_modules/.test(a));
}

/** The playbook file this process runs (`zx script.ts`, `node script.ts`), if any. */
export function scriptFile(argv = process.argv): string | undefined {
  const i = scriptIndex(argv);
  return i >= 0 ? resolve(argv[i]!) : undefined;
}

const OPTIONS = {
  inventory: { type: 'string', short: 'i' },
  limit: { type: 'string', short: 'l', multiple: true },
  tags: { type: 'string', short: 't', multiple: true },
  'skip-tags': { type: 'string', multiple: true },
  'extra-vars': { type: 'string', short: 'e', multiple: true },
  'start-at-task': { type: 'string' },
  check: { type: 'boolean', short: 'C' },
  'detailed-exitcode': { type: 'boolean' },
  diff: { type: 'boolean', short: 'D' },
  verbose: { type: 'boolean', short: 'v', multiple: true },
  forks: { type: 'string', short: 'f' },
  json: { type: 'string' },
  'list-hosts': { type: 'boolean' },
  'list-tasks': { type: 'boolean' },
  'list-tags': { type: 'boolean' },
  'syntax-check': { type: 'boolean' },
  'accept-new-host-keys': { type: 'boolean' },
  'known-hosts': { type: 'string' },
  plain: { type: 'boolean' },
  agent: { type: 'boolean' },
  'no-agent': { type: 'boolean' },
  'agent-idle': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The runner's flags that take a value (for wrappers that split their own arguments off). */
export const VALUE_FLAGS: ReadonlySet<string> = new Set(
  Object.entries(OPTIONS).flatMap(([k, v]) => (v.type === 'string' ? [`--${k}`, ...('short' in v ? [`-${v.short}`] : [])] : [])),
);

function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length]![b.length]!;
}

/** The closest known flag to a mistyped one, when it is close enough to be a typo. */
export function didYouMean(flag: string): string | undefined {
  const name = flag.replace(/^-+/, '').split('=')[0]!;
  let best: [string, number] | undefined;
  for (const k of Object.keys(OPTIONS)) {
    const dist = k.startsWith(name) && name.length >= 3 ? 1 : distance(name, k);
    if (!best || dist < best[1]) best = [k, dist];
  }
  return best && best[1] <= Math.max(2, Math.floor(best[0].length / 3)) ? `--${best[0]}` : undefined;
}

/** Ansible's key=value splitting: whitespace separates pairs, quotes group. */
function splitPairs(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote = '';
  let any = false;
  for (const c of text) {
    if (quote) {
      if (c === quote) quote = '';
      cur += c;
    } else if (c === '"' || c === "'") {
      // Kept: a quoted value stays a string when read as YAML ("0755", "8080").
      quote = c;
      any = true;
      cur += c;
    } else if (/\s/.test(c)) {
      if (cur || any) out.push(cur);
      cur = '';
      any = false;
    } else cur += c;
  }
  if (quote) throw new SelectionError(`--extra-vars "${text}": unbalanced quote`);
  if (cur || any) out.push(cur);
  return out;
}

/**
 * -e values, merged left to right: `key=value` pairs (the value read as a YAML 1.2 scalar or
 * JSON: `port=8080` is a number, `name="8080"` a string, `list=[1,2]` a list), a JSON/YAML
 * object (`{"a": 1}`), or `@file.yaml|json` (a mapping). Keys are replaced whole, as Ansible's
 * default hash_behaviour=replace does.
 */
export async function parseExtraVars(values: string[], cwd = process.cwd()): Promise<Record<string, unknown>> {
  const YAML = (await import('yaml')).default;
  const out: Record<string, unknown> = {};
  const asMapping = (v: unknown, where: string) => {
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new SelectionError(`--extra-vars ${where}: expected a mapping of var names to values`);
    Object.assign(out, v);
  };
  for (const raw of values) {
    const text = raw.trim();
    if (text.startsWith('@')) {
      const file = resolve(cwd, text.slice(1));
      let body: string;
      try {
        body = readFileSync(file, 'utf8');
      } catch (e) {
        throw new SelectionError(`--extra-vars ${text}: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      let parsed: unknown;
      try {
        parsed = file.endsWith('.json') ? JSON.parse(body) : YAML.parse(body, { version: '1.2' });
      } catch (e) {
        throw new SelectionError(`--extra-vars ${text}: cannot parse ${file}: ${(e as Error).message}`);
      }
      asMapping(parsed, file);
    } else if (text.startsWith('{')) {
      let parsed: unknown;
      try {
        parsed = YAML.parse(text, { version: '1.2' });
      } catch (e) {
        throw new SelectionError(`--extra-vars ${text}: not valid JSON/YAML: ${(e as Error).message}`);
      }
      asMapping(parsed, text);
    } else {
      for (const pair of splitPairs(text)) {
        const eq = pair.indexOf('=');
        const key = eq > 0 ? pair.slice(0, eq) : '';
        if (!/^[A-Za-z_][\w]*$/.test(key)) throw new SelectionError(`--extra-vars "${pair}": expected key=value, a JSON object or @file`);
        const value = pair.slice(eq + 1);
        let v: unknown;
        try {
          v = value === '' ? '' : YAML.parse(value, { version: '1.2' });
        } catch {
          v = value; // not a YAML scalar (e.g. "a: b: c"): the text itself
        }
        out[key] = v ?? (value === 'null' || value === '~' ? null : value);
      }
    }
  }
  return out;
}

export function parseCli(args: string[]): RunOptions & { help?: boolean; extraVarArgs?: string[] } {
  const list = (v: string[] | undefined) => (v === undefined ? undefined : v.flatMap((x) => x.split(',')).map((s) => s.trim()).filter(Boolean));
  let values;
  try {
    ({ values } = parseArgs({ args, strict: true, allowPositionals: false, options: OPTIONS }));
  } catch (e) {
    const err = e as Error & { code?: string };
    if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const flag = /'([^']+)'/.exec(err.message)?.[1] ?? '';
      const hint = didYouMean(flag);
      throw new SelectionError(`unknown option ${flag}${hint ? ` (did you mean ${hint}?)` : ''}`);
    }
    if (err.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      throw new SelectionError(`${err.message.replace(/\. To specify.*$/, '')}; flags that take a value: ${[...VALUE_FLAGS].filter((f) => f.startsWith('--')).join(', ')}`);
    }
    throw e;
  }
  let forks: number | undefined;
  if (values.forks !== undefined) {
    forks = Number(values.forks);
    if (!Number.isInteger(forks) || forks < 1) throw new SelectionError(`--forks: expected a whole number >= 1, got "${values.forks}"`);
  }
  if (values.agent && values['no-agent']) throw new SelectionError('--agent and --no-agent contradict each other; give one');
  if (values['agent-idle'] !== undefined && parseDuration(values['agent-idle']) === undefined)
    throw new SelectionError(`--agent-idle: expected a duration such as 10m, 90s or 600 (seconds), got "${values['agent-idle']}"`);
  if (values['detailed-exitcode'] && !values.check && !values['list-hosts'] && !values['list-tasks'])
    throw new SelectionError('--detailed-exitcode needs --check (it reports whether a dry run found changes pending)');
  return {
    help: values.help,
    inventory: values.inventory,
    // Patterns keep their ":" and "&"/"!" (resolved by selection.ts); "," separates too.
    limit: values.limit?.flatMap((x) => x.split(',')).map((s) => s.trim()).filter(Boolean),
    tags: list(values.tags),
    skipTags: list(values['skip-tags']),
    extraVarArgs: values['extra-vars'],
    startAtTask: values['start-at-task'],
    check: values.check,
    detailedExitcode: values['detailed-exitcode'],
    diff: values.diff,
    verbose: values.verbose?.length,
    forks,
    json: values.json,
    listHosts: values['list-hosts'],
    listTasks: values['list-tasks'],
    listTags: values['list-tags'],
    syntaxCheck: values['syntax-check'],
    acceptNewHostKeys: values['accept-new-host-keys'],
    knownHosts: values['known-hosts'],
    plain: values.plain,
    agent: values['no-agent'] ? false : values.agent ? true : undefined,
    agentIdle: values['agent-idle'],
  };
}

const stdout: Out = { write: (s) => void process.stdout.write(s) };

/** Runs a playbook with options; returns the exit code and the records. Used by tests too. */
export async function run(pb: Playbook<any>, o: RunOptions = {}): Promise<RunResult> {
  const out = o.out ?? stdout;
  const useColor = o.color ?? (!!process.stdout.isTTY && !o.out && !process.env.NO_COLOR);
  const inv: ResolvedInventory<any> =
    typeof o.inventory === 'object' ? resolveInventory(o.inventory, '<inventory object>') : await loadInventory(o.inventory, { playbook: o.playbookFile ?? scriptFile() });
  // Extra vars win over every inventory var (Ansible's precedence), for every host.
  if (o.extraVars && Object.keys(o.extraVars).length)
    for (const h of inv.hosts.values()) h.vars = { ...(h.vars as object), ...o.extraVars };
  const plan = startAt(resolvePlan(pb, inv, o), o.startAtTask, pb.name);

  if (o.syntaxCheck) {
    const file = o.playbookFile ?? scriptFile();
    const problems = file ? (await import('./syntax-check.ts')).typeCheck(file) : [];
    if (problems.length) throw new SelectionError(`--syntax-check: tsc found ${problems.length} error${problems.length > 1 ? 's' : ''}:\n  ${problems.join('\n  ')}`);
    out.write(`playbook: ${file ?? pb.name}\ninventory: ${inv.source}\n${plan.length} play${plan.length === 1 ? '' : 's'}, ${plan.reduce((n, pp) => n + pp.tasks.length, 0)} tasks: syntax ok\n`);
    return { exitCode: EXIT.OK, plays: [], recap: {} };
  }

  if (o.listHosts || o.listTasks || o.listTags) {
    if (o.listHosts) out.write(`inventory: ${inv.source}\n`);
    for (const pp of plan) {
      out.write(`play: ${pp.play.name}\n`);
      // The graph: what the play waits for, when the playbook declares any `after` (no line: it starts at once).
      if (o.listTasks && pb.plays.some((p) => p.after !== undefined)) {
        const after = (pp.after ?? []).map((i) => pb.plays[i]!.name).filter((n) => plan.some((x) => x.play.name === n));
        if (after.length) out.write(`  after: ${after.join(', ')}\n`);
      }
      if (o.listHosts) out.write(`  hosts (${pp.hosts.length}): ${pp.hosts.map((h) => h.name).join(', ')}\n`);
      if (o.listTasks) for (const t of pp.tasks) out.write(`  ${t.role.name} : ${t.task.name}    TAGS: [${t.tags.join(', ')}]\n`);
      if (o.listTags) out.write(`  TASK TAGS: [${[...new Set(pp.tasks.flatMap((t) => t.tags))].sort().join(', ')}]\n`);
    }
    return { exitCode: EXIT.OK, plays: [], recap: {} };
  }

  const [{ Engine }, { preflight }, { formatAgent, formatInterrupted, formatRecap, ListrRunner, PlainRunner, recap, writeJson }] = await Promise.all([
    import('./engine.ts'),
    import('./connection/preflight.ts'),
    import('./report.ts'),
  ]);
  // Keys and known_hosts of every selected host, before any host is contacted.
  const knownHosts = o.knownHosts ? resolve(o.knownHosts) : inv.knownHosts;
  const selected = [...new Map(plan.flatMap((pp) => pp.hosts).map((h) => [h.name, h])).values()];
  const problems = preflight(selected, { knownHosts, acceptNewHostKeys: o.acceptNewHostKeys ?? false });
  if (problems.length)
    throw new InventoryError(
      `cannot run with inventory ${inv.source}: ${problems.length} problem${problems.length > 1 ? 's' : ''} found before contacting any host; nothing ran:\n  - ${problems.join('\n  - ')}`,
    );

  const err = o.err ?? { write: (s: string) => void process.stderr.write(s) };
  const agent = await startAgent(o, selected, err);

  const started = new Date();
  const engine = new Engine({
    check: o.check ?? false,
    diff: o.diff ?? false,
    forks: o.forks ?? 100,
    knownHosts,
    acceptNewHostKeys: o.acceptNewHostKeys ?? false,
    hosts: inv.hosts,
    verbose: o.verbose ?? 0,
    agent,
  });
  const fmt = { diff: o.diff ?? false, color: useColor, verbose: o.verbose ?? 0 };
  // listr2 needs a terminal of usable width: some CI ptys report 0 columns, which it would
  // draw as one character per line. Plain lines then.
  const wide = (process.stdout.columns ?? 0) >= 20;
  const runner = !o.plain && !o.out && process.stdout.isTTY && wide ? new ListrRunner(out, fmt) : new PlainRunner(out, fmt);
  let plays: PlayRecord[] = [];
  let notStarted: string[] = [];
  let sigints = 0;
  let aborting: Promise<unknown> | undefined;
  const onSigint = () => {
    sigints++;
    if (sigints === 1) {
      const n = engine.interrupt();
      err.write(`\ninterrupted: waiting for ${n} running task${n === 1 ? '' : 's'} (Ctrl-C again to abort)\n`);
    } else if (sigints === 2) {
      err.write(`\naborting: killing the running commands on the hosts\n`);
      aborting = engine.abort().then((cut) => {
        if (cut.length) err.write(`aborted: killed the commands of ${cut.map((c) => `${c.host} ("${c.task}")`).join(', ')}; these hosts may be left half-done\n`);
      });
    } else {
      err.write('\nphoenix: a third Ctrl-C: exiting now\n');
      process.exit(EXIT.INTERRUPTED);
    }
  };
  process.on('SIGINT', onSigint);
  try {
    engine.prepare(plan);
    engine.prefetch(plan);
    ({ plays, notStarted } = await engine.runPlan(plan, runner));
    await aborting;
  } finally {
    process.removeListener('SIGINT', onSigint);
    await engine.close();
    agent?.close();
  }
  const rc = recap(plays);
  const all = Object.values(rc);
  // Pending changes include "unknown" (a task that cannot tell in check mode may change).
  const pending = o.check && o.detailedExitcode && all.some((c) => c.changed > 0 || c.unknown > 0);
  // A Ctrl-C that came too late to stop anything does not make the run "interrupted".
  const interrupted = all.some((c) => c.status === 'interrupted') || notStarted.length > 0;
  const exitCode = interrupted
    ? EXIT.INTERRUPTED
    : all.some((c) => c.status === 'failed')
    ? EXIT.FAILED
    : all.some((c) => c.status === 'unreachable')
      ? EXIT.UNREACHABLE
      : pending
        ? EXIT.CHANGES
        : EXIT.OK;
  out.write(`\n${formatRecap(rc, o.check ?? false, useColor)}\n`);
  const agentReport = agent ? { socket: agent.socket, reused: [...agent.reused].sort(), direct: [...agent.fellBack].sort() } : undefined;
  if (agentReport) out.write(`${formatAgent(agentReport)}\n`);
  if (interrupted) {
    const notRun = notStarted;
    const why = formatInterrupted(rc);
    out.write(`\nINTERRUPTED (Ctrl-C${engine.aborted ? ' twice: running commands were killed' : ''})${why ? `\n${why}` : ''}${notRun.length ? `\nplays not started: ${notRun.join(', ')}` : ''}\n`);
  }
  if (o.json) {
    const report: JsonReport = {
      playbook: pb.name,
      inventory: inv.source,
      startedAt: started.toISOString(),
      durationMs: Date.now() - started.getTime(),
      check: o.check ?? false,
      diff: o.diff ?? false,
      selection: { tags: o.tags, skipTags: o.skipTags, limit: o.limit, ...(o.startAtTask !== undefined ? { startAtTask: o.startAtTask } : {}) },
      plays,
      recap: rc,
      ...(agentReport ? { agent: agentReport } : {}),
      exitCode,
    };
    writeJson(resolve(o.json), report);
  }
  return { exitCode, plays, recap: rc };
}

/**
 * The warm-connection agent for this run, when asked for (--agent, PHOENIX_AGENT=1) and some
 * selected host is one it can hold; undefined means direct connections. An agent that cannot be
 * had never fails the run: it connects directly, saying why (always for an unsafe directory,
 * with -v otherwise).
 */
async function startAgent(o: RunOptions, selected: { connection: string; jump?: unknown }[], err: Out): Promise<AgentClient | undefined> {
  const env = process.env.PHOENIX_AGENT;
  const wanted = o.agent ?? (env !== undefined && env !== '' && env !== '0' && env !== 'false');
  if (!wanted || !selected.some((h) => h.connection !== 'local' && !h.jump)) return undefined;
  const idleText = o.agentIdle ?? process.env.PHOENIX_AGENT_IDLE;
  const idleMs = idleText === undefined || idleText === '' ? undefined : parseDuration(idleText);
  if (idleText !== undefined && idleText !== '' && idleMs === undefined)
    throw new SelectionError(`${o.agentIdle !== undefined ? 'agentIdle' : 'PHOENIX_AGENT_IDLE'}: expected a duration such as 10m, 90s or 600 (seconds), got "${idleText}"`);
  const verbose = (o.verbose ?? 0) >= 1;
  const { AgentClient } = await import('./agent/client.ts');
  try {
    return await AgentClient.start({ idleMs, log: verbose ? (s) => err.write(`phoenix: ${s}\n`) : undefined, warn: (s) => err.write(`phoenix: ${s}\n`) });
  } catch (e) {
    if ((e as Error).name === 'AgentDirError' || verbose) err.write(`phoenix: agent: ${(e as Error).message}; connecting directly\n`);
    return undefined;
  }
}

/** True when the module at `url` is the script being run (by zx, tsx or node), not an import. */
export function isMain(url: string): boolean {
  const file = fileURLToPath(url);
  return process.argv.slice(1, 4).some((a) => resolve(a) === file);
}

/** The entry point of every playbook file: parses the flags, runs, sets the exit code. */
export async function main(pb: Playbook<any>, argv = scriptArgs()): Promise<number> {
  markStarted();
  let code: number;
  try {
    const { extraVarArgs, ...opts } = parseCli(argv);
    if (opts.help) {
      process.stdout.write(`${HELP}\n`);
      return (process.exitCode = EXIT.OK);
    }
    if (extraVarArgs?.length) opts.extraVars = await parseExtraVars(extraVarArgs);
    code = (await run(pb, opts)).exitCode;
  } catch (e) {
    const err = e as Error & { code?: string };
    const usage = e instanceof SelectionError || e instanceof InventoryError || (err.code ?? '').startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`phoenix: ${redact(err.message)}\n`);
    if (!usage) process.stderr.write(`${redact(err.stack ?? '')}\n`);
    else if ((err.code ?? '').startsWith('ERR_PARSE_ARGS') || /^unknown option /.test(err.message)) process.stderr.write(`run with --help for the options\n`);
    code = usage ? EXIT.USAGE : EXIT.INTERNAL;
  }
  process.exitCode = code;
  return code;
}
