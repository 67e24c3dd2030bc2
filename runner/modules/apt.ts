// apt: Debian packages present, absent or latest; the cache is refreshed only when
// something must be installed and it is older than cacheValidTime.
import { shQuote } from '../connection/shell.ts';
import { packageStates } from '../facts.ts';
import type { Action, ActionResult } from '../types.ts';
import { TaskError } from '../types.ts';

export interface AptOptions {
  name: string | string[];
  state?: 'present' | 'absent' | 'latest';
  /** Seconds the package lists stay fresh (default 3600). */
  cacheValidTime?: number;
  installRecommends?: boolean;
}

const ENV = 'DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a';

export function apt(o: AptOptions): Action {
  const names = [o.name].flat();
  const state = o.state ?? 'present';
  return {
    module: 'apt',
    summary: `apt ${names.join(' ')} (${state})`,
    async run(ctx): Promise<ActionResult> {
      const states = await packageStates(ctx, names);
      let todo: string[] = [];
      if (state === 'absent') todo = states.filter((s) => s.installed).map((s) => s.name);
      else todo = states.filter((s) => !s.installed).map((s) => s.name);
      if (state === 'latest') {
        const installed = states.filter((s) => s.installed).map((s) => s.name);
        if (installed.length) {
          const r = await ctx.run(`apt-cache policy ${installed.map(shQuote).join(' ')}`);
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
      if (ctx.check) return { changed: true, msg };
      const pkgs = todo.map(shQuote).join(' ');
      const valid = o.cacheValidTime ?? 3600;
      const refresh =
        verb === 'install'
          ? `stamp=/var/lib/apt/periodic/update-success-stamp; lists=$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -newermt "-${valid} seconds" 2>/dev/null | head -1); ` +
            `if [ -z "$lists" ]; then apt-get update -q >/dev/null || exit 4; fi; `
          : '';
      const rec = o.installRecommends ? '' : '--no-install-recommends';
      const cmd =
        verb === 'install'
          ? `${refresh}${ENV} apt-get install -y -q ${rec} -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold ${pkgs}`
          : `${ENV} apt-get remove -y -q ${pkgs}`;
      const r = await ctx.run(cmd, { timeout: 1800 });
      if (r.code !== 0)
        throw new TaskError(r.code === 4 ? 'apt-get update failed' : `apt-get ${verb} failed`, { command: `apt-get ${verb} ${todo.join(' ')}`, stderr: r.stderr, code: r.code });
      return { changed: true, msg };
    },
  };
}
