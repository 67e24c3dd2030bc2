// The full run, in the order of ../shared/ARCHITECTURE.md. Plays are added as roles land:
// step-ca (LXC 103) first, trust, nginx (LXC 101), Traefik (LXC 102), swarm, stacks.
import { isMain, main, play, playbook } from '../runner/index.ts';
import type { PhoenixVars } from '../inventory.ts';
import nginx from '../roles/nginx/index.ts';

export const site = playbook<PhoenixVars>('site', [play({ name: 'gateway', hosts: 'nginx', roles: [nginx] })]);

if (isMain(import.meta.url)) await main(site);
