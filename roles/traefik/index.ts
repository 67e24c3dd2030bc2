// Traefik on LXC 102: the internal reverse proxy behind the nginx gateway. Installs the pinned
// release (verified against the vendor's checksums file; in the lab, traefik-standin from
// lab/standins/traefik/), runs it as its own system user under a hardened unit, and renders the
// static and dynamic config from the inventory (roles/traefik/config.ts), checked against
// Traefik's schemas and by semantic checks before anything reaches the host.
// A static config change restarts Traefik in its task and waits for /ping; a static config it
// does not come back on is rolled back (the runner's `replace`, docs/rollback.md). A unit or
// binary change restarts it (a handler, then /ping); a dynamic change needs nothing: Traefik
// watches the directory.
// Its certificate comes from step-ca through roles/certs: certbot answers http-01 on
// 127.0.0.1:ACME_CHALLENGE_PORT, which Traefik's ACME challenge router forwards to; certbot's deploy
// hook copies the certificate for the traefik user and touches the TLS file so Traefik reloads.
import { command, compute, copy, shell, file, handler, output, installBinary, replace, restartAndWait, role, shQuote, systemd, task, TaskError, template, waitFor, type Action, type ActionResult, type Readiness } from '../../runner/index.ts';
import { serviceState } from '../../runner/facts.ts';
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

/** /ping on the port of the ping entrypoint a static config names (the one live at the time). */
function pingIn(parse: (text: string) => unknown, staticYaml: string): Readiness | undefined {
  try {
    const s = parse(staticYaml) as { ping?: { entryPoint?: string }; entryPoints?: Record<string, { address?: string }> };
    const address = s.entryPoints?.[s.ping?.entryPoint ?? 'traefik']?.address;
    return address ? { url: `http://127.0.0.1:${address.slice(address.lastIndexOf(':') + 1)}/ping`, status: 200 } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The static config through the runner's `replace` (docs/rollback.md): when Traefik does not
 * come back on it (what the checks cannot see, e.g. a port another service holds), the previous
 * file is put back and Traefik restarted on it, and the run fails with Traefik's own log lines.
 */
async function staticConfig(vars: V, staticYaml: string): Promise<Action> {
  const { parse } = await import('yaml');
  return replace({
    name: 'traefik',
    files: [{ dest: vars.traefik.configFile, content: staticYaml, mode: '0644', owner: 'root', group: 'root' }],
    service: { unit: 'traefik', ready: (yaml) => pingIn(parse, yaml), timeout: 30 },
  });
}

/** A unit or binary change: restart, then wait (bounded) for /ping; Traefik's own error when it does not answer. */
export const restartTraefik = handler<V>('restart traefik', ({ vars }) => {
  const restart = systemd({ name: 'traefik', state: 'restarted', daemonReload: true });
  return {
    ...restart,
    summary: 'restart traefik, then /ping',
    async run(ctx): Promise<ActionResult> {
      // A unit not installed yet fails as the systemd module says (unknown in check mode then).
      if ((await serviceState(ctx, 'traefik')).load === 'not-found') return restart.run(ctx);
      const r: ActionResult = { changed: true, msg: 'restarted' };
      // The restart and the wait: a real run only.
      return ctx.change(r, async () => {
        const ep = vars.traefik.entryPoints[vars.traefik.pingEntryPoint]!;
        const port = ep.address.slice(ep.address.lastIndexOf(':') + 1);
        const up = await restartAndWait(ctx, { unit: 'traefik', daemonReload: true, timeout: 30 }, { url: `http://127.0.0.1:${port}/ping`, status: 200 });
        if (!up.ok) throw new TaskError(`traefik on ${ctx.host.name}: no answer on /ping after the restart: ${up.error}`, { command: 'systemctl restart traefik', stderr: up.log });
        return { ...r, msg: `${r.msg ?? 'restarted'}, answers /ping` };
      });
    },
  };
});
const restart = [restartTraefik];

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
    // Replaced, Traefik restarted in the task, rolled back when it does not come back.
    task({ name: 'static config', uses: [config], do: ({ vars, get }) => staticConfig(vars, get(config).staticYaml) }),
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
