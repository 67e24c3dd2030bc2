// Traefik on LXC 102: the internal reverse proxy behind the nginx gateway. Installs the pinned
// release (verified against the vendor's checksums file; in the lab, traefik-standin from
// lab/standins/traefik/), runs it as its own system user under a hardened unit, and renders the
// static and dynamic config from the inventory (roles/traefik/config.ts), checked against
// Traefik's schemas and by semantic checks before anything reaches the host.
// A static config, unit or binary change restarts Traefik (a handler, then /ping; a static
// config it does not come back on is rolled back); a dynamic change needs nothing: Traefik
// watches the directory.
// Its certificate comes from step-ca through roles/certs: certbot answers http-01 on
// 127.0.0.1:ACME_CHALLENGE_PORT, which Traefik's ACME challenge router forwards to; certbot's deploy
// hook copies the certificate for the traefik user and touches the TLS file so Traefik reloads.
import { command, compute, copy, shell, file, handler, output, installBinary, role, shQuote, systemd, task, TaskError, template, waitFor, type Action, type ActionResult } from '../../runner/index.ts';
import type { BaseVars } from '../base-vars.ts';
import type { CertVars } from '../certs/vars.ts';
import { servedCertificate, certificateTasks, liveDir } from '../certs/index.ts';
import { certificatePaths, DYNAMIC_FILE, renderTraefik, TLS_FILE } from './config.ts';
import { ACME_CHALLENGE_PORT, traefikVarsSchema, type TraefikVars } from './vars.ts';

/** What Traefik reads: its own vars, the certificate settings and the base. */
export type TraefikRoleVars = TraefikVars & Pick<CertVars, 'certs'> & BaseVars;
type V = TraefikRoleVars;

const UNIT = '/etc/systemd/system/traefik.service';

/** The rendered, checked config: the first task makes it, the config-writing tasks read it. */
const config = output<Awaited<ReturnType<typeof renderTraefik>>>('traefik config');
/** The static config file's content before this run changed it (base64), for the restart handler's rollback. */
const previousStatic = output<{ previous?: string }>('previous static config');
const DEPLOY_HOOK = '/usr/local/lib/phoenix/traefik-cert-deploy';

/** certbot's deploy hook: copy the live certificate and key for Traefik, atomically, then touch the TLS file. */
export function deployHookScript(t: V['traefik']): string {
  const live = liveDir(t.certificate.name);
  const { dir } = certificatePaths(t);
  const tlsFile = `${t.dynamicDir}/${TLS_FILE}`;
  return `#!/bin/sh
# Managed by phoenix (roles/traefik): certbot's deploy hook for Traefik's certificate
# (also run by phoenix when the copies differ). Copies ${live}/{fullchain,privkey}.pem to
# ${dir}/ (root:${t.user}, 0640), then touches ${tlsFile} so Traefik reloads them.
set -eu
live=${live}
dest=${dir}
install -d -m 0750 -o root -g ${t.user} ${t.certificate.tlsDir} "$dest"
changed=
for f in fullchain.pem privkey.pem; do
  if ! cmp -s "$live/$f" "$dest/$f"; then
    t=$(mktemp "$dest/.$f.XXXXXX")
    cat "$live/$f" > "$t"
    chown root:${t.user} "$t"
    chmod 0640 "$t"
    mv -f "$t" "$dest/$f"
    changed=1
  fi
done
if [ -n "$changed" ] && [ -f ${tlsFile} ]; then touch ${tlsFile}; fi
`;
}

function pingWait(vars: V, timeout = 60): Action {
  const ep = vars.traefik.entryPoints[vars.traefik.pingEntryPoint]!;
  return pingAt(ep.address, timeout);
}

const pingAt = (address: string, timeout: number) => waitFor({ url: `http://127.0.0.1:${address.slice(address.lastIndexOf(':') + 1)}/ping`, status: 200, timeout });

/** The ping entrypoint's address in a static config phoenix wrote earlier. */
async function pingAddressIn(staticYaml: string): Promise<string | undefined> {
  const { parse } = await import('yaml');
  try {
    const s = parse(staticYaml) as { ping?: { entryPoint?: string }; entryPoints?: Record<string, { address?: string }> };
    return s.entryPoints?.[s.ping?.entryPoint ?? 'traefik']?.address;
  } catch {
    return undefined;
  }
}

/**
 * Restart, then wait for /ping. When Traefik does not come back on a new static config (what
 * the checks cannot see, e.g. a port another service holds), the previous static config is
 * put back and Traefik restarted on it, and the run fails with Traefik's own log lines.
 */
function restartOrRollBack(vars: V, previous: string | undefined): Action {
  const t = vars.traefik;
  const restart = systemd({ name: 'traefik', state: 'restarted', daemonReload: true });
  return {
    module: 'systemd',
    summary: 'restart traefik, then /ping (the previous static config back if it does not answer)',
    async run(ctx): Promise<ActionResult> {
      const r = await restart.run(ctx);
      // The wait and the rollback belong to the restart: a real run only.
      return ctx.change(r, async () => {
        try {
          await pingWait(vars, 30).run(ctx);
          return { ...r, msg: `${r.msg ?? 'restarted'}, answers /ping` };
        } catch {
          const journal = (await ctx.probe('journalctl -u traefik -n 6 --no-pager -o cat 2>&1; true')).stdout;
          if (previous === undefined) throw new TaskError('traefik: no answer on /ping after the restart', { command: 'systemctl restart traefik', stderr: journal });
          const old = Buffer.from(previous, 'base64');
          await copy({ dest: t.configFile, content: old, mode: '0644', owner: 'root', group: 'root' }).run(ctx);
          await ctx.run('systemctl restart traefik');
          const oldPing = await pingAddressIn(old.toString('utf8'));
          const back = oldPing
            ? await pingAt(oldPing, 30)
                .run(ctx)
                .then(() => true, () => false)
            : false;
          throw new TaskError(
            `traefik: no answer on /ping with the new static config; ${t.configFile} is back to the previous one and Traefik ${back ? 'serves again on it' : 'does not answer on it either'}`,
            { command: 'systemctl restart traefik', stderr: journal },
          );
        }
      });
    },
  };
}

export const restartTraefik = handler<V>('restart traefik', ({ vars, ran, result }) => restartOrRollBack(vars, ran(previousStatic) ? result(previousStatic).data?.previous : undefined));
const restart = [restartTraefik];

/** copy, remembering the file's previous content (base64) for the restart handler's rollback. */
function keepingPrevious(path: string, action: Action): Action {
  return {
    ...action,
    async run(ctx): Promise<ActionResult> {
      const before = await ctx.probe(`if [ -f ${shQuote(path)} ]; then base64 -w0 ${shQuote(path)}; else echo ABSENT; fi`);
      const r = await action.run(ctx);
      const prev = before.code === 0 && before.stdout.trim() !== 'ABSENT' ? before.stdout.trim() : undefined;
      return { ...r, data: { previous: r.changed === true ? prev : undefined } };
    },
  };
}

export default role<V>({
  name: 'traefik',
  vars: traefikVarsSchema,
  tags: ['proxy'],
  url: import.meta.url,
  tasks: [
    // Everything is generated and checked first: a bad inventory fails here, before any change.
    task({ name: 'render and check config', register: config, do: ({ vars }) => compute('generate and validate Traefik config', () => renderTraefik(vars.traefik)) }),
    task({
      name: 'system user',
      do: ({ vars }) =>
        command(['useradd', '--system', '--user-group', '--home-dir', '/nonexistent', '--no-create-home', '--shell', '/usr/sbin/nologin', vars.traefik.user], { unless: `id -u ${shQuote(vars.traefik.user)}` }),
    }),
    task({ name: 'install traefik', notify: restart, do: ({ vars }) => installBinary({ dest: vars.traefik.binary, source: vars.traefik.source }) }),
    task({ name: 'config directory', do: ({ vars }) => file({ path: dirOf(vars.traefik.configFile), state: 'directory', mode: '0755', owner: 'root', group: 'root' }) }),
    task({ name: 'dynamic config directory', do: ({ vars }) => file({ path: vars.traefik.dynamicDir, state: 'directory', mode: '0755', owner: 'root', group: 'root' }) }),
    task({
      name: 'static config',
      notify: restart,
      register: previousStatic,
      uses: [config],
      do: ({ vars, get }) =>
        keepingPrevious(vars.traefik.configFile, copy({ dest: vars.traefik.configFile, content: get(config).staticYaml, mode: '0644', owner: 'root', group: 'root' })),
    }),
    // Watched by Traefik: no restart, no reload.
    task({
      name: 'dynamic config',
      uses: [config],
      do: ({ vars, get }) => copy({ dest: `${vars.traefik.dynamicDir}/${DYNAMIC_FILE}`, content: get(config).dynamicYaml, mode: '0644', owner: 'root', group: 'root' }),
    }),
    task({ name: 'systemd unit', notify: restart, do: ({ vars }) => template({ src: 'traefik.service.hbs', dest: UNIT, vars, mode: '0644', owner: 'root', group: 'root' }) }),
    task({ name: 'traefik running', do: systemd({ name: 'traefik', state: 'started', enabled: true, daemonReload: true }) }),
    task({ name: 'traefik answers /ping', do: ({ vars }) => pingWait(vars) }),
    // Its certificate: certbot (roles/certs) over http-01, answered through Traefik's web entrypoint.
    task({ name: 'hook directory', do: file({ path: dirOf(DEPLOY_HOOK), state: 'directory', mode: '0755', owner: 'root', group: 'root' }) }),
    task({ name: 'certificate deploy hook', do: ({ vars }) => copy({ dest: DEPLOY_HOOK, content: deployHookScript(vars.traefik), mode: '0755', owner: 'root', group: 'root' }) }),
    ...certificateTasks<V>({
      certName: 'traefik',
      names: ({ vars }) => vars.traefik.certificate.domains,
      challenge: { standalone: { port: ACME_CHALLENGE_PORT, address: '127.0.0.1' } },
      deployHook: DEPLOY_HOOK,
      tags: ['traefik-cert'],
    }),
    // The copies are made by the hook; this repairs them when they are missing or differ.
    task({
      name: "traefik's copy of the certificate",
      do: ({ vars }) => {
        const live = liveDir(vars.traefik.certificate.name);
        const { dir } = certificatePaths(vars.traefik);
        return command([DEPLOY_HOOK], {
          onlyIf: `test -f ${live}/fullchain.pem && ! { cmp -s ${live}/fullchain.pem ${dir}/fullchain.pem && cmp -s ${live}/privkey.pem ${dir}/privkey.pem; }`,
        });
      },
    }),
    // Written only once the certificate exists, so the first run can bootstrap (Traefik serves no TLS before).
    task({
      name: 'TLS config',
      uses: [config],
      do: async ({ vars, get, probe, check }) => {
        const { certFile, keyFile } = certificatePaths(vars.traefik);
        const have = (await probe(`test -f ${certFile} && test -f ${keyFile}`)).code === 0;
        const dest = `${vars.traefik.dynamicDir}/${TLS_FILE}`;
        // check-mode exception: the certificate tasks before it were not applied: unknown, not a failure.
        if (!have && check) return { module: 'copy', summary: `copy ${dest}`, run: async () => ({ changed: 'unknown' as const, msg: 'the certificate is not issued yet (check mode)' }) };
        if (!have) throw new TaskError(`TLS config: ${certFile} or ${keyFile} is missing (the certificate tasks should have made them)`);
        return copy({ dest, content: get(config).tlsYaml, mode: '0644', owner: 'root', group: 'root' });
      },
    }),
    // Served with the step-ca certificate, verified with this guest's system trust store.
    task({
      name: 'traefik serves TLS',
      do: ({ vars }) => {
        const ep = Object.entries(vars.traefik.entryPoints).find(([, e]) => e.tls);
        if (!ep) return command(['true'], { readOnly: true });
        const port = ep[1].address.slice(ep[1].address.lastIndexOf(':') + 1);
        const name = vars.traefik.certificate.domains[0]!;
        return waitFor({ url: `https://${name}:${port}/phoenix-tls-check`, status: 404, timeout: 30 });
      },
    }),
    // Traefik picks the copied files up by watching them: the run ends only once it presents the current certificate.
    task({
      name: 'traefik presents its certificate',
      do: ({ vars }) => {
        const ep = Object.entries(vars.traefik.entryPoints).find(([, e]) => e.tls);
        if (!ep) return shell('true', { readOnly: true });
        const port = Number(ep[1].address.slice(ep[1].address.lastIndexOf(':') + 1));
        return servedCertificate(vars.traefik.certificate.name, { address: '127.0.0.1', port, serverName: vars.traefik.certificate.domains[0]! });
      },
    }),
  ],
});

function dirOf(path: string): string {
  return path.slice(0, path.lastIndexOf('/')) || '/';
}
