// systemd service: started/stopped/restarted/reloaded, enabled, daemon-reload.
import { shQuote } from '../connection/shell.ts';
import { serviceState } from '../facts.ts';
import type { Action, ActionResult } from '../types.ts';
import { NotYetError, TaskError } from '../types.ts';
import { invalidArgs } from './args.ts';

export interface SystemdOptions {
  name: string;
  state?: 'started' | 'stopped' | 'restarted' | 'reloaded';
  enabled?: boolean;
  /**
   * Run `systemctl daemon-reload` first when the unit's files changed since systemd loaded them
   * (its NeedDaemonReload, or a unit file or drop-in on disk that it has not loaded); always
   * before a start, stop, restart or reload this task makes.
   */
  daemonReload?: boolean;
}

/**
 * Where systemd reads units and drop-ins from, highest precedence first (systemd.unit(5), "System
 * Unit Search Path"; /lib is /usr/lib on merged-usr). Alias names (`sshd` for ssh.service) are not
 * followed: name the unit itself.
 */
const UNIT_DIRS = [
  '/etc/systemd/system.control',
  '/run/systemd/system.control',
  '/run/systemd/transient',
  '/run/systemd/generator.early',
  '/etc/systemd/system',
  '/etc/systemd/system.attached',
  '/run/systemd/system',
  '/run/systemd/system.attached',
  '/run/systemd/generator',
  '/usr/local/lib/systemd/system',
  '/usr/lib/systemd/system',
  '/lib/systemd/system',
  '/run/systemd/generator.late',
];

/** The unit's full name (`nginx` is `nginx.service`), the fragment names it may have, and the drop-in directories that apply to it. */
export function unitFileNames(name: string): { unit: string; fragments: string[]; dropinDirs: string[] } {
  const unit = /\.[a-z]+$/.test(name) ? name : `${name}.service`;
  const dot = unit.lastIndexOf('.');
  const base = unit.slice(0, dot);
  const type = unit.slice(dot + 1);
  const at = base.indexOf('@');
  const template = at >= 0 ? `${base.slice(0, at + 1)}.${type}` : undefined;
  const fragments = [unit, ...(template ? [template] : [])];
  // foo-bar-baz.service also reads foo-.service.d and foo-bar-.service.d (systemd >= 246), and
  // every unit of a type reads <type>.d (systemd >= 244).
  const dash: string[] = [];
  const prefixName = at >= 0 ? base.slice(0, at) : base;
  for (let i = prefixName.indexOf('-'); i >= 0; i = prefixName.indexOf('-', i + 1)) dash.push(`${prefixName.slice(0, i + 1)}.${type}.d`);
  return { unit, fragments, dropinDirs: [`${type}.d`, ...dash, ...(template ? [`${template}.d`] : []), `${unit}.d`] };
}

/**
 * One read-only command: the unit's state, and whether systemd's loaded view of its unit files
 * is stale (so that a `daemonReload` is needed). systemd's own NeedDaemonReload misses a drop-in
 * directory created since the last reload (systemd 252 caches the directories it knows), so the
 * unit file and drop-ins on disk are listed too and compared with what systemd loaded
 * (FragmentPath, DropInPaths); see parseUnitProbe.
 */
export function unitProbe(name: string): string {
  const { unit, fragments, dropinDirs } = unitFileNames(name);
  const q = shQuote;
  return [
    `s=$(systemctl show -p LoadState -p ActiveState -p UnitFileState -p NeedDaemonReload -p FragmentPath -p DropInPaths -- ${q(unit)}) || exit $?`,
    // What systemd loaded, resolved on the host as the files on disk are below.
    `printf '%s\\n' "$s" | while IFS= read -r l; do echo "$l"; case $l in`,
    `  FragmentPath=?*) echo "lunit:$(readlink -f -- "\${l#FragmentPath=}")";;`,
    `  DropInPaths=?*) for f in \${l#DropInPaths=}; do echo "ldropin:$(readlink -f -- "$f")"; done;;`,
    `esac; done`,
    `echo --phoenix-unit-files--`,
    `seen=; for d in ${UNIT_DIRS.map(q).join(' ')}; do`,
    `  for f in ${fragments.map((f) => `"$d"/${q(f)}`).join(' ')}; do [ -e "$f" ] && echo "unit:$(readlink -f -- "$f")"; done`,
    // One drop-in per file name, the first in precedence order (as systemd); a link to /dev/null masks it.
    `  for f in ${dropinDirs.map((x) => `"$d"/${q(x)}/*.conf`).join(' ')}; do [ -e "$f" ] || continue; n=\${f##*/}; case " $seen " in *" $n "*) continue;; esac; seen="$seen $n"; r=$(readlink -f -- "$f"); [ "$r" = /dev/null ] || echo "dropin:$r"; done`,
    `done; true`,
  ].join('\n');
}

export interface UnitProbe {
  state: { load: string; active: string; enabled: string };
  /** Why systemd's view is stale, or undefined when it is current. */
  reload?: string;
}

/** Reads unitProbe's output (every path in it resolved on the host with readlink -f). */
export function parseUnitProbe(out: string): UnitProbe {
  const [show = '', files = ''] = out.split('--phoenix-unit-files--');
  const props: Record<string, string> = {};
  for (const l of show.trim().split('\n')) {
    const i = l.indexOf('=');
    if (i > 0) props[l.slice(0, i)] = l.slice(i + 1);
  }
  const lines = files.split('\n').map((l) => l.trim());
  const shown = show.split('\n').map((l) => l.trim());
  const firstUnit = lines.find((l) => l.startsWith('unit:'))?.slice(5);
  const loadedUnit = shown.find((l) => l.startsWith('lunit:'))?.slice(6);
  const onDisk = [...new Set(lines.filter((l) => l.startsWith('dropin:')).map((l) => l.slice(7)))].sort();
  const loaded = [...new Set(shown.filter((l) => l.startsWith('ldropin:')).map((l) => l.slice(8)))].sort();
  const state = { load: props.LoadState ?? '', active: props.ActiveState ?? '', enabled: props.UnitFileState ?? '' };
  let reload: string | undefined;
  if (props.NeedDaemonReload !== 'no') reload = `NeedDaemonReload=${props.NeedDaemonReload ?? '?'}`;
  else if ((firstUnit ?? '') !== (loadedUnit ?? '')) reload = `unit file ${firstUnit ?? 'none'} is not the loaded ${loadedUnit ?? 'none'}`;
  else if (onDisk.join(' ') !== loaded.join(' ')) reload = `drop-ins on disk (${onDisk.join(', ') || 'none'}) are not the loaded (${loaded.join(', ') || 'none'})`;
  return reload ? { state, reload } : { state };
}

export function systemd(o: SystemdOptions): Action {
  const invalid = invalidArgs('systemd', o);
  if (invalid) return invalid;
  const bits = [o.state, o.enabled === undefined ? '' : o.enabled ? 'enabled' : 'disabled'].filter(Boolean).join(', ');
  return {
    module: 'systemd',
    summary: `service ${o.name}${bits ? ` (${bits})` : ''}`,
    async run(ctx): Promise<ActionResult> {
      const where = `service ${o.name}`;
      // With daemonReload, the unit files are compared with systemd's loaded view in the same round trip.
      let reload: string | undefined;
      let st: { load: string; active: string; enabled: string };
      if (o.daemonReload) {
        const r = await ctx.probe(unitProbe(o.name));
        if (r.code !== 0) throw new TaskError(`cannot query service ${o.name}`, { command: `systemctl show ${o.name}`, stderr: r.stderr, code: r.code });
        ({ state: st, reload } = parseUnitProbe(r.stdout));
      } else st = await serviceState(ctx, o.name);
      const n = shQuote(o.name);
      // An earlier task (e.g. apt) may be what installs the unit: NotYetError (unknown in check mode then).
      if (st.load === 'not-found') throw new NotYetError(`${where}: unit not found`, { command: `systemctl show ${o.name}` });
      const todo: string[] = [];
      const why: string[] = [];
      if (o.daemonReload) todo.push('systemctl daemon-reload');
      if (o.enabled === true && !['enabled', 'static', 'alias', 'indirect', 'generated'].includes(st.enabled)) {
        todo.push(`systemctl enable ${n}`);
        why.push('enabled');
      }
      if (o.enabled === false && st.enabled === 'enabled') {
        todo.push(`systemctl disable ${n}`);
        why.push('disabled');
      }
      const running = st.active === 'active' || st.active === 'activating' || st.active === 'reloading';
      if (o.state === 'started' && !running) {
        todo.push(`systemctl start ${n}`);
        why.push('started');
      } else if (o.state === 'stopped' && running) {
        todo.push(`systemctl stop ${n}`);
        why.push('stopped');
      } else if (o.state === 'restarted') {
        todo.push(`systemctl restart ${n}`);
        why.push('restarted');
      } else if (o.state === 'reloaded') {
        // Reloading a stopped service starts it, as Ansible does.
        todo.push(running ? `systemctl reload ${n}` : `systemctl start ${n}`);
        why.push(running ? 'reloaded' : 'started');
      }
      if (!why.length) {
        // Unit files changed since systemd read them (unitProbe): reload its view even when nothing
        // else is to do. It alters no service state, so it is not counted as a change (nor run in
        // check mode). Unchanged unit files: no reload (it costs ~0.15 s on every run).
        if (o.daemonReload && reload)
          return ctx.change({ changed: false }, async () => {
            const r = await ctx.run('systemctl daemon-reload');
            if (r.code !== 0) throw new TaskError(`${where}: daemon-reload failed`, { command: 'systemctl daemon-reload', stderr: r.stderr, code: r.code });
          });
        return { changed: false };
      }
      return ctx.change({ changed: true, msg: why.join(', ') }, async () => {
        const cmd = todo.join(' && ');
        const r = await ctx.run(cmd);
        if (r.code !== 0) {
          const status = await ctx.probe(`systemctl status --no-pager -n 10 ${n} 2>&1; true`);
          throw new TaskError(`${where}: ${why.join(', ')} failed`, { command: cmd, stderr: `${r.stderr}${status.stdout}`, code: r.code });
        }
        return { changed: true, msg: why.join(', ') };
      });
    },
  };
}
