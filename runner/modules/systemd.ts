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
  /** Run `systemctl daemon-reload` first (when unit files changed). */
  daemonReload?: boolean;
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
      const st = await serviceState(ctx, o.name);
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
        // Unit files may have changed: reload systemd's view of them even when nothing else
        // is to do. It alters no service state, so it is not counted as a change (nor run in check mode).
        if (o.daemonReload)
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
