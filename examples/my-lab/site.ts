// Your playbook: run it with `npx zx site.ts -i inventory.ts` (or `npm run site`).
// This folder's package.json has "type": "module", so this file is an ES module and may use
// top-level await; .npmrc loads tsx so that `npx zx` runs TypeScript.
import { isMain, main, play, playbook } from 'phoenix';
import motd from './roles/motd/index.ts';
import type { MyLabVars } from './vars.ts';

export const site = playbook<MyLabVars>('my-lab', [play({ name: 'base', hosts: 'base', roles: [motd] })]);

if (isMain(import.meta.url)) await main(site);
