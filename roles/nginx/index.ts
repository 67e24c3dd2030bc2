// nginx on LXC 101: the public gateway. Installed from Debian, its site and landing page
// rendered from the inventory, validated before they replace the live files, reloaded by a
// handler only when something changed.
import { apt, file, handler, role, shell, systemd, task, template, waitFor } from '../../runner/index.ts';
import type { PhoenixVars } from '../../inventory.ts';

type V = PhoenixVars;

const SITE = '/etc/nginx/sites-available/phoenix.conf';
const WEBROOT = '/var/www/phoenix';

// A site file is checked on its own (inside a minimal http block) before it goes live,
// so a bad render never reaches /etc/nginx.
const validateSite =
  'f=%s; w=$(mktemp); echo "events {} http { include /etc/nginx/mime.types; include $f; }" > "$w"; ' +
  'nginx -t -q -c "$w"; rc=$?; rm -f "$w"; exit $rc';

export const reloadNginx = handler<V>('reload nginx', systemd({ name: 'nginx', state: 'reloaded' }));

export default role<V>({
  name: 'nginx',
  tags: ['gateway'],
  url: import.meta.url,
  tasks: [
    task({ name: 'install nginx', do: apt({ name: 'nginx', state: 'present' }) }),
    task({ name: 'web root', do: file({ path: WEBROOT, state: 'directory', mode: '0755', owner: 'root', group: 'root' }) }),
    task({
      name: 'landing page',
      notify: [reloadNginx],
      do: ({ host, vars }) =>
        template({
          src: 'index.html.hbs',
          dest: `${WEBROOT}/index.html`,
          mode: '0644',
          vars: { ...vars, hostName: host.name },
        }),
    }),
    task({
      name: 'site config',
      notify: [reloadNginx],
      do: ({ vars }) => template({ src: 'site.conf.hbs', dest: SITE, mode: '0644', vars: { ...vars, webroot: WEBROOT }, validate: validateSite }),
    }),
    task({ name: 'enable site', notify: [reloadNginx], do: file({ path: '/etc/nginx/sites-enabled/phoenix.conf', state: 'link', src: SITE }) }),
    task({ name: 'disable default site', notify: [reloadNginx], do: file({ path: '/etc/nginx/sites-enabled/default', state: 'absent' }) }),
    task({ name: 'check whole config', tags: ['validate'], do: shell('nginx -t -q', { readOnly: true }) }),
    task({ name: 'nginx running', do: systemd({ name: 'nginx', state: 'started', enabled: true }) }),
    task({ name: 'nginx answers', do: ({ vars }) => waitFor({ url: `http://127.0.0.1:${vars.nginx.listenHttp}/`, status: 200, timeout: 30 }) }),
  ],
});
