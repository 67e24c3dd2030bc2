// Roles are typed by what they read (issue 14, item 4; docs/vars.md). This file is type-checked
// by `npx tsc --noEmit -p .` (tsconfig includes test/): each `@ts-expect-error` below is a read or
// a use the compiler must refuse, so if a role's vars type ever widens again (e.g. back to the
// whole PhoenixVars), tsc fails on the unused directive. At run time it shows the nginx role
// reused with an inventory of nginx's own vars only: no other role's vars, no production address.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { play, playbook, resolveInventory, resolvePlan, shell, task, defineInventory, type Action, type ActionContext, type ActionResult, type Role } from '../../runner/index.ts';
import nginx, { type NginxRoleVars } from '../../roles/nginx/index.ts';
import trust, { type TrustRoleVars } from '../../roles/trust/index.ts';
import traefik from '../../roles/traefik/index.ts';
import stepCa, { type StepCaRoleVars } from '../../roles/step-ca/index.ts';
import { dockerApi, type DockerApiRoleVars } from '../../roles/swarm/api.ts';
import { nginxDefaults } from '../../roles/nginx/vars.ts';
import { certDefaults } from '../../roles/certs/vars.ts';
import { site } from '../../playbooks/site.ts';
import { phoenix, type PhoenixVars } from '../../inventory.ts';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const is = <T extends true>(_: T) => undefined;

// Each role is typed with exactly its declared vars, not the whole homelab's.
is<Equal<typeof nginx, Role<NginxRoleVars>>>(true);
is<Equal<typeof trust, Role<TrustRoleVars>>>(true);
is<Equal<typeof stepCa, Role<StepCaRoleVars>>>(true);
is<Equal<typeof dockerApi, Role<DockerApiRoleVars>>>(true);
// @ts-expect-error nginx's vars type is not PhoenixVars
is<Equal<NginxRoleVars, PhoenixVars>>(true);

// A task of a role can read only what the role's type declares.
export const undeclared = [
  task<NginxRoleVars>({
    name: 'nginx reads traefik',
    // @ts-expect-error nginx does not declare traefik's vars
    do: ({ vars }) => shell(vars.traefik.binary),
  }),
  task<NginxRoleVars>({
    name: 'nginx reads the swarm manager address',
    // @ts-expect-error nginx declares only topology.traefik
    do: ({ vars }) => shell(vars.topology.swarmManager.address),
  }),
  task<TrustRoleVars>({
    name: 'trust reads the swarm',
    // @ts-expect-error trust declares stepCa (the exported root), not the swarm
    do: ({ vars }) => shell(vars.swarm.manager),
  }),
  task<StepCaRoleVars>({
    name: 'step-ca reads the certs',
    // @ts-expect-error step-ca does not declare the certificate settings
    do: ({ vars }) => shell(vars.certs.directory),
  }),
];
// What it declares it reads of other roles, it may: trust reads step-ca's exported root, the Docker API roles trust's root name and Traefik's.
export const declared = [
  task<TrustRoleVars>({ name: 'root', do: ({ vars }) => shell(`test -f ${vars.stepCa.exportRoot}`) }),
  task<DockerApiRoleVars>({ name: 'root name', do: ({ vars }) => shell(`test -f ${vars.trust.rootName} ${vars.traefik.swarm.tls.cert}`) }),
];

// The vars of the nginx role alone: its own, the certificate settings, where Traefik is, the base.
const domain = 'gw.example.test';
const gatewayVars: Omit<NginxRoleVars, 'guestId'> = {
  domain,
  topology: { traefik: { address: '192.0.2.12', http: 80, https: 443, dashboard: 8080 } },
  ...nginxDefaults(domain),
  ...certDefaults(domain, 9000, 'acme'),
};
const gatewayInventory = defineInventory<NginxRoleVars>({ vars: gatewayVars, hosts: { gw1: { address: '192.0.2.153', groups: ['nginx'], vars: { guestId: 1 } } } });
const gateway = playbook<NginxRoleVars>('gateway', [play({ hosts: 'nginx', roles: [nginx] })]);
// @ts-expect-error Traefik's role needs Traefik's vars, which an nginx-only inventory does not have
export const notWithTraefik = playbook<NginxRoleVars>('gateway', [play({ hosts: 'nginx', roles: [traefik] })]);
// The whole homelab's vars still satisfy every role: site.ts is a playbook of PhoenixVars.
export const all: typeof site = playbook<PhoenixVars>('site', [...site.plays]);

test('the nginx role runs from an inventory of its own vars: its vars schema passes, and every template renders from them alone', async () => {
  const inv = resolveInventory(gatewayInventory);
  const plan = resolvePlan(gateway, inv);
  const host = inv.hosts.get('gw1')!;
  const texts: string[] = [];
  let rendered = 0;
  for (const { role, task: t } of plan[0]!.tasks) {
    const probe = async (cmd: string) => (cmd.includes('echo absent') ? { code: 0, stdout: 'absent\nparent\n', stderr: '', stdoutBuffer: Buffer.from('') } : { code: 1, stdout: '', stderr: '', stdoutBuffer: Buffer.from('') });
    const action: Action<any> = typeof t.do === 'function' ? await t.do({ host, vars: host.vars, check: true, probe } as never) : t.do;
    if (action.module !== 'template') continue;
    const ctx = { host, check: true, diff: true, pendingChanges: false, probe, run: probe, change: async (p: ActionResult) => p, roleDir: role.dir } as unknown as ActionContext<any>;
    const r = await action.run(ctx);
    for (const d of r.diff ?? []) texts.push(JSON.stringify(d));
    rendered++;
  }
  assert.is(rendered, 3, 'landing page, http site, tls site');
  const all = texts.join('\n');
  assert.ok(all.includes(`portainer.${domain}`) && all.includes('192.0.2.12:443'), 'rendered from the inventory given');
  // Nothing of production's vars: its domain or any of its addresses.
  assert.not.ok(all.includes((phoenix.vars as PhoenixVars).domain));
  assert.not.match(all, /\b10\.0\.0\.\d+/);
});

test.run();
