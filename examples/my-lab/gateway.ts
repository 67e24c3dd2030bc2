// phoenix's own roles are importable too: `phoenix/roles/<name>`. Each is typed by the vars it
// reads (here NginxRoleVars: nginx's own, the certificate settings, where Traefik is, the
// domain), so the inventory gives just those (see inventory.ts and phoenix's docs/vars.md).
import { isMain, main, play, playbook } from 'phoenix';
import nginx, { type NginxRoleVars } from 'phoenix/roles/nginx';

export const gateway = playbook<NginxRoleVars>('gateway', [play({ name: 'gateway', hosts: 'nginx', roles: [nginx] })]);

if (isMain(import.meta.url)) await main(gateway);
