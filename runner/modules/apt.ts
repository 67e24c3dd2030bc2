// apt: Debian packages present, absent or latest; the cache is refreshed only when
// something must be installed and it is older than cacheValidTime.
import { shQuote } from '../connection/shell.ts';
import { packageStates } from '../facts.ts';
import type { Action, ActionContext, ActionResult } from '../types.ts';
import { TaskError } from '../types.ts';
import { invalidArgs } from './args.ts';

export interface AptOptions {
  /** Package names; "name=version" pins a version (a glob such as "nginx=1.22*" is allowed). */
  name: string | string[];
  state?: 'present' | 'absent' | 'latest';
  /** Seconds the package lists stay fresh (default 3600). */
  cacheValidTime?: number;
  installRecommends?: boolean;
  /**
   * Seconds to wait for the dpkg/apt locks when another apt, dpkg or unattended-upgrades
   * holds them (Ansible's lock_timeout; default 60). 0 fails at once.
   */
  lockTimeout?: number;
}

const ENV = 'env DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a';
const LOCK_TIMEOUT_EXIT = 5;

/**
 * A shell function `apt_try CMD...` that runs an apt-get command and, while it fails only
 * because another process holds the dpkg or lists lock, retries until the deadline.
 */
function lockWaiter(seconds: number): string {
  return [
    `deadline=$(( $(date +%s) + ${Math.max(0, Math.floor(seconds))} ))`,
    `e=$(mktemp); trap 'rm -f "$e"' EXIT`,
    `apt_try() {`,
    `  while :; do`,
    `    "$@" 2>"$e"; rc=$?`,
    `    if [ "$rc" -ne 0 ] && grep -qE 'Could not get lock|Unable to acquire the dpkg frontend lock|Unable to lock' "$e"; then`,
    `      if [ "$(date +%s)" -ge "$deadline" ]; then cat "$e" >&2; return ${LOCK_TIMEOUT_EXIT}; fi`,
    `      sleep 1; continue`,
    `    fi`,
    `    cat "$e" >&2; return "$rc"`,
    `  done`,
    `}`,
  ].join('\n');
}

/** A "name=version" glob (Ansible's fnmatch) as a RegExp. */
const versionGlob = (want: string) => new RegExp(`^${want.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);

/**
 * Which of `specs` ("name" or "name=version-glob") apt's package lists do not know, from the
 * lists as they are (apt-cache show / madison: no refresh). undefined when there are no lists.
 */
async function notInLists(ctx: ActionContext, specs: string[]): Promise<string[] | undefined> {
  const parsed = specs.map((s) => /^([^=]+)(?:=(.+))?$/.exec(s)!).map((m) => ({ pkg: m[1]!, version: m[2] }));
  const script =
    `ls /var/lib/apt/lists/ 2>/dev/null | grep -q '_Packages' || { echo nolists; exit 0; }\n` +
    parsed
      .map(({ pkg, version }) =>
        version
          ? `echo "versions:${pkg}"; apt-cache madison ${shQuote(pkg)} 2>/dev/null | awk -F'|' '{ gsub(/ /, "", $2); print "v:" $2 }'`
          : `apt-cache show --no-all-versions ${shQuote(pkg)} >/dev/null 2>&1 || echo "missing:${pkg}"`,
      )
      .join('\n');
  const r = await ctx.probe(script);
  if (/^nolists$/m.test(r.stdout)) return undefined;
  const out: string[] = [];
  const lines = r.stdout.split('\n');
  for (const { pkg, version } of parsed) {
    if (!version) {
      if (lines.includes(`missing:${pkg}`)) out.push(`no package "${pkg}" in apt's lists`);
      continue;
    }
    const from = lines.indexOf(`versions:${pkg}`);
    const versions: string[] = [];
    for (const l of lines.slice(from + 1)) {
      if (!l.startsWith('v:')) break;
      versions.push(l.slice(2));
    }
    if (!versions.some((v) => versionGlob(version).test(v)))
      out.push(versions.length ? `no version of "${pkg}" matching "${version}" in apt's lists (has ${versions.join(', ')})` : `no package "${pkg}" in apt's lists`);
  }
  return out;
}

export function apt(o: AptOptions): Action {
  const invalid = invalidArgs('apt', o);
  if (invalid) return invalid;
  const names = [o.name].flat();
  const state = o.state ?? 'present';
  return {
    module: 'apt',
    summary: `apt ${names.join(' ')} (${state})`,
    async run(ctx): Promise<ActionResult> {
      // "name=version" pins a version (a glob, as Ansible's fnmatch): checked against the
      // installed version, so a pinned package that is installed is no change.
      const specs = names.map((n) => {
        const m = /^([^=]+)=(.+)$/.exec(n);
        return { spec: n, pkg: m ? m[1]! : n, version: m?.[2] };
      });
      if (state === 'latest' && specs.some((s) => s.version))
        throw new TaskError(`apt ${names.join(' ')}: a version pin (name=version) cannot be combined with state "latest"`);
      const states = await packageStates(ctx, specs.map((s) => s.pkg));
      const matches = (i: number) => {
        const want = specs[i]!.version;
        if (!want) return true;
        const re = new RegExp(`^${want.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
        return re.test(states[i]!.version ?? '');
      };
      let todo: string[] = [];
      if (state === 'absent') todo = states.filter((s, i) => s.installed && matches(i)).map((s) => s.name);
      else todo = states.flatMap((s, i) => (!s.installed || !matches(i) ? [specs[i]!.spec] : []));
      if (state === 'latest') {
        const installed = states.filter((s) => s.installed).map((s) => s.name);
        if (installed.length) {
          const r = await ctx.probe(`apt-cache policy ${installed.map(shQuote).join(' ')}`);
          let cur = '';
          let inst = '';
          for (const line of r.stdout.split('\n')) {
            if (/^\S.*:$/.test(line)) cur = line.slice(0, -1);
            const m = /^\s+Installed: (\S+)/.exec(line);
            if (m) inst = m[1]!;
            const c = /^\s+Candidate: (\S+)/.exec(line);
            if (c && cur && c[1] !== inst && c[1] !== '(none)') todo.push(cur);
          }
        }
      }
      if (!todo.length) return { changed: false };
      const verb = state === 'absent' ? 'remove' : 'install';
      const msg = `${verb} ${todo.join(' ')}`;
      // check-mode exception: apt's lists answer whether the real run would find the packages.
      if (ctx.check && verb === 'install') {
        // As the real run would: a package apt's lists do not know fails (no refresh in check mode).
        const unknown = await notInLists(ctx, todo);
        if (unknown === undefined) return { changed: 'unknown', msg: `${msg} (apt's package lists are empty; the real run refreshes them)` };
        if (unknown.length && ctx.pendingChanges) return { changed: 'unknown', msg: `${msg} (${unknown.join(', ')} not in apt's lists yet; earlier changes not applied)` };
        if (unknown.length)
          throw new TaskError(`apt install ${todo.join(' ')}: ${unknown.join('; ')}: the real run would fail (E: Unable to locate package)`, {
            command: `apt-cache show ${todo.join(' ')}`,
          });
      }
      return ctx.change({ changed: true, msg }, async () => {
        const pkgs = todo.map(shQuote).join(' ');
        const valid = o.cacheValidTime ?? 3600;
        const refresh =
          verb === 'install'
            ? `stamp=/var/lib/apt/periodic/update-success-stamp; lists=$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -newermt "-${valid} seconds" 2>/dev/null | head -1); ` +
              `if [ -z "$lists" ]; then apt_try apt-get update -q >/dev/null; rc=$?; [ "$rc" -eq ${LOCK_TIMEOUT_EXIT} ] && exit ${LOCK_TIMEOUT_EXIT}; [ "$rc" -eq 0 ] || exit 4; fi; `
            : '';
        const rec = o.installRecommends ? '' : '--no-install-recommends';
        const lockTimeout = o.lockTimeout ?? 60;
        const cmd =
          `${lockWaiter(lockTimeout)}\n` +
          (verb === 'install'
            ? `${refresh}apt_try ${ENV} apt-get install -y -q ${rec} -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold ${pkgs}`
            : `apt_try ${ENV} apt-get remove -y -q ${pkgs}`);
        const r = await ctx.run(cmd, { timeout: 1800 + lockTimeout });
        if (r.code === LOCK_TIMEOUT_EXIT) {
          const holder = /held by process \d+ \([^)]*\)/.exec(r.stderr)?.[0];
          throw new TaskError(
            `apt ${verb} ${todo.join(' ')}: the dpkg/apt lock is still held${holder ? ` (${holder})` : ''} after waiting ${lockTimeout}s (lockTimeout)`,
            { command: `apt-get ${verb} ${todo.join(' ')}`, stderr: r.stderr, code: r.code },
          );
        }
        if (r.code !== 0)
          throw new TaskError(r.code === 4 ? 'apt-get update failed' : `apt-get ${verb} failed`, { command: `apt-get ${verb} ${todo.join(' ')}`, stderr: r.stderr, code: r.code });
        return { changed: true, msg };
      });
    },
  };
}
