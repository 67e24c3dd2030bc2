// Your hosts. Typed: a missing or misspelt var is a compile error, not a failed run.
// Reuse phoenix's own vars and roles by spreading its defaults (see gateway.ts).
import { defineInventory } from 'phoenix';
import { phoenix, type PhoenixVars } from 'phoenix/inventory';
import type { MyLabVars } from './vars.ts';

export default defineInventory<MyLabVars & PhoenixVars>({
  knownHosts: '~/.ssh/known_hosts',
  vars: {
    ...phoenix.vars!,
    motd: { dir: '/etc', text: 'Welcome to my lab.' },
  },
  hosts: {
    box1: { address: '192.0.2.21', user: 'deploy', key: '~/.ssh/id_ed25519', become: true, groups: ['base'] },
    gw1: { address: '192.0.2.153', user: 'deploy', key: '~/.ssh/id_ed25519', become: true, groups: ['base', 'nginx'] },
  },
});
