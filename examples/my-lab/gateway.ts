// phoenix's own roles are importable too: `phoenix/roles/<name>`. They are typed against
// PhoenixVars, so the inventory spreads phoenix's defaults (see inventory.ts).
import { isMain, main, play, playbook } from 'phoenix';
import nginx from 'phoenix/roles/nginx';
import type { PhoenixVars } from 'phoenix/inventory';

export const gateway = playbook<PhoenixVars>('gateway', [play({ name: 'gateway', hosts: 'nginx', roles: [nginx] })]);

if (isMain(import.meta.url)) await main(gateway);
