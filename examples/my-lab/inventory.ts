// Your hosts. Typed: a missing or misspelt var is a compile error, not a failed run.
// phoenix's nginx role (gateway.ts) gets only the vars it reads, with your own values: its
// defaults for your domain, your step-ca's ACME directory, where your Traefik is.
import { defineInventory } from 'phoenix';
import { certDefaults } from 'phoenix/roles/certs';
import { nginxDefaults, type NginxRoleVars } from 'phoenix/roles/nginx';
import type { MyLabVars } from './vars.ts';

const domain = 'lab.example';

export default defineInventory<MyLabVars & NginxRoleVars>({
  knownHosts: '~/.ssh/known_hosts',
  vars: {
    motd: { dir: '/etc', text: 'Welcome to my lab.' },
    domain,
    ...nginxDefaults(domain),
    ...certDefaults(domain, 9000, 'acme'),
    topology: { traefik: { address: '192.0.2.12', http: 80, https: 443, dashboard: 8080 } },
  },
  hosts: {
    box1: { address: '192.0.2.21', user: 'deploy', key: '~/.ssh/id_ed25519', become: true, groups: ['base'] },
    gw1: { address: '192.0.2.153', user: 'deploy', key: '~/.ssh/id_ed25519', become: true, groups: ['base', 'nginx'], vars: { guestId: 101 } },
  },
});
