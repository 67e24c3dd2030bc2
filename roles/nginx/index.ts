// nginx on LXC 101: the public gateway. Port 80 answers the ACME challenge and redirects to
// 443; port 443 presents a certificate from step-ca (roles/certs) and forwards the service names
// to Traefik over verified TLS. Configs are validated before they replace the live files, and a
// handler reloads (never restarts) nginx only when a config or the certificate changed.
import { apt, command, file, handler, output, role, shell, systemd, task, template, waitFor } from '../../runner/index.ts';
import type { BaseVars, Topology } from '../base-vars.ts';
import type { CertVars } from '../certs/vars.ts';
import { certificateTasks, liveDir, servedCertificate } from '../certs/index.ts';
import { nginxVarsSchema, type NginxVars } from './vars.ts';

// For an inventory of this role's vars alone (docs/vars.md).
export { nginxDefaults, type NginxVars } from './vars.ts';

/** What nginx reads: its own vars, the certificate settings, where Traefik is (its upstream, in tls.conf.hbs) and the base. */
export type NginxRoleVars = NginxVars & Pick<CertVars, 'certs'> & { topology: Pick<Topology, 'traefik'> } & BaseVars;
type V = NginxRoleVars;

const AVAILABLE = '/etc/nginx/sites-available';
const ENABLED = '/etc/nginx/sites-enabled';
const WEBROOT = '/var/www/phoenix';
const ACME_ROOT = '/var/www/acme';
const CERT = 'gateway';

// A site file is checked on its own (inside a minimal http block) before it goes live,
// so a bad render never reaches /etc/nginx.
const validateSite =
  'f=%s; w=$(mktemp); echo "events {} http { include /etc/nginx/mime.types; include $f; }" > "$w"; ' +
  'nginx -t -q -c "$w"; rc=$?; rm -f "$w"; exit $rc';

/**
 * `systemctl reload` only signals nginx, whose new workers take over asynchronously: the handler
 * then waits, bounded, until :443 presents the current certificate (when the TLS site is on).
 */
export const reloadNginx = handler<V>('reload nginx', ({ vars }) => {
  const reload = systemd({ name: 'nginx', state: 'reloaded' });
  const served = servedCertificate(CERT, { address: '127.0.0.1', port: vars.nginx.listenHttps, serverName: vars.nginx.serverNames[0]! });
  return {
    ...reload,
    async run(ctx) {
      const r = await reload.run(ctx);
      // check-mode exception: the reload was not done, so there is nothing to wait for.
      if (ctx.check) return r;
      const tls = await ctx.run(`test -e ${ENABLED}/phoenix-tls.conf && test -s ${liveDir(CERT)}/cert.pem`);
      if (tls.code === 0) await served.run(ctx);
      return r;
    },
  };
});

// The plain-HTTP site's files: a change is applied at once (task "apply http site now").
const httpSite = output('http site');
const httpLink = output('http site link');
const noDefault = output('default site removal');
const noOld = output('old site removal');
const httpFiles = [httpSite, httpLink, noDefault, noOld];

export default role<V>({
  name: 'nginx',
  vars: nginxVarsSchema,
  tags: ['gateway'],
  url: import.meta.url,
  tasks: [
    task({ name: 'install nginx', do: apt({ name: 'nginx', state: 'present' }) }),
    task({ name: 'web root', do: file({ path: WEBROOT, state: 'directory', mode: '0755', owner: 'root', group: 'root' }) }),
    task({ name: 'ACME challenge root', do: file({ path: ACME_ROOT, state: 'directory', mode: '0755', owner: 'root', group: 'root' }) }),
    task({
      name: 'landing page',
      do: ({ host, vars }) => template({ src: 'index.html.hbs', dest: `${WEBROOT}/index.html`, mode: '0644', vars: { ...vars, hostName: host.name } }),
    }),
    task({
      name: 'http site',
      register: httpSite,
      notify: [reloadNginx],
      do: ({ vars }) => template({ src: 'http.conf.hbs', dest: `${AVAILABLE}/phoenix-http.conf`, mode: '0644', vars: { ...vars, acmeRoot: ACME_ROOT }, validate: validateSite }),
    }),
    task({ name: 'enable http site', register: httpLink, notify: [reloadNginx], do: file({ path: `${ENABLED}/phoenix-http.conf`, state: 'link', src: `${AVAILABLE}/phoenix-http.conf` }) }),
    task({ name: 'disable default site', register: noDefault, notify: [reloadNginx], do: file({ path: `${ENABLED}/default`, state: 'absent' }) }),
    // phoenix before TLS served everything from one plain-HTTP site.
    task({ name: 'remove the old plain-HTTP site', register: noOld, notify: [reloadNginx], do: file({ path: `${ENABLED}/phoenix.conf`, state: 'absent' }) }),
    // The plain-HTTP site (which answers the ACME challenge) must be live before a certificate
    // can be issued, so it is applied now rather than by the handler at the end of the play.
    task({ name: 'nginx running', do: systemd({ name: 'nginx', state: 'started', enabled: true }) }),
    task({
      name: 'apply http site now',
      uses: httpFiles,
      when: ({ result }) => httpFiles.some((o) => result(o).changed !== false),
      do: shell('nginx -t -q && systemctl reload nginx'),
    }),
    ...certificateTasks<V>({
      certName: CERT,
      names: ({ vars }) => vars.nginx.serverNames,
      challenge: { webroot: ACME_ROOT },
      deployHook: 'systemctl reload nginx',
      notify: [reloadNginx],
    }),
    task({
      name: 'tls site',
      notify: [reloadNginx],
      do: ({ vars }) =>
        template({
          src: 'tls.conf.hbs',
          dest: `${AVAILABLE}/phoenix-tls.conf`,
          mode: '0644',
          vars: { ...vars, webroot: WEBROOT, certDir: liveDir(CERT), traefikName: `traefik.${vars.domain}` },
          validate: validateSite,
        }),
    }),
    task({ name: 'enable tls site', notify: [reloadNginx], do: file({ path: `${ENABLED}/phoenix-tls.conf`, state: 'link', src: `${AVAILABLE}/phoenix-tls.conf` }) }),
    task({ name: 'check whole config', tags: ['validate'], do: command(['nginx', '-t', '-q'], { readOnly: true }) }),
    task({ name: 'nginx answers', do: ({ vars }) => waitFor({ url: `http://127.0.0.1:${vars.nginx.listenHttp}/.well-known/acme-challenge/`, status: 404, timeout: 30 }) }),
  ],
});
