// One phoenixVars() derives every name (issue 14, item 4): an inventory built with another
// `domain`, in production and in the lab, has no trace of the default domain, neither in any
// host's resolved vars nor in what site.ts would do with them (every task's action, run in check
// mode with --diff against a fake fresh host: its summary, the commands it sends, the files it
// would write, its messages), and every derived name is under the new domain.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveInventory, resolvePlan, type Action, type ActionContext, type ActionResult, type Host, type Inventory } from '../../runner/index.ts';
import { HostOutputs } from '../../runner/outputs.ts';

// The lab's own secrets go to a scratch directory (never the lab's /var/lib/phoenix-lab).
const tmp = mkdtempSync(join(tmpdir(), 'phx-vars-'));
process.env.PHOENIX_LAB_SECRETS = join(tmp, 'secrets');
process.env.PHOENIX_PORTAINER_ADMIN_PASSWORD ??= 'env-admin-password-for-the-test';
process.env.PHOENIX_QDRANT_API_KEY ??= 'env-qdrant-key-for-the-test';

const { DOMAIN, phoenixInventory } = await import('../../inventory.ts');
const { labInventory } = await import('../../lab/inventory.ts');
const { site } = await import('../../playbooks/site.ts');

const NEW = 'example.test';
const labState = {
  user: 'phoenix',
  key: join(tmp, 'id_ed25519'),
  knownHosts: join(tmp, 'known_hosts'),
  hosts: Object.fromEntries(['lxc103', 'lxc101', 'lxc102', 'vm1001', 'vm1002'].map((h, i) => [h, { address: `192.168.201.${10 + i}`, port: 22 }])),
  stepCa: null,
};
const inventories: [string, () => Inventory<any>][] = [
  ['production', () => phoenixInventory({ domain: NEW })],
  ['lab', () => labInventory(labState, { domain: NEW })],
];

/** Every string in a value (Secrets as their masked text), with its path. */
function strings(v: unknown, path = ''): [string, string][] {
  if (typeof v === 'string') return [[path, v]];
  if (Array.isArray(v)) return v.flatMap((x, i) => strings(x, `${path}[${i}]`));
  if (v && typeof v === 'object') {
    if (v.constructor !== Object) return [[path, String(v)]];
    return Object.entries(v).flatMap(([k, x]) => strings(x, path ? `${path}.${k}` : k));
  }
  return [];
}

const stale = (found: [string, string][]) => found.filter(([, s]) => s.includes(DOMAIN)).map(([p, s]) => `${p}: ${s}`);

/**
 * What site.ts would do on every host with these vars: each task's action run in check mode with
 * --diff against a fake fresh host (nothing there yet); its summary, the commands it sends, the
 * files it would write (the diffs) and its messages or errors.
 */
async function planTexts(inv: ReturnType<typeof resolveInventory<any>>) {
  const seen: string[] = [];
  let actions = 0;
  let files = 0;
  for (const pp of resolvePlan(site, inv)) {
    for (const host of pp.hosts) {
      // The typed outputs, as the engine keeps them: a reader gets what its producer returned.
      const outputs = new HostOutputs(host.name, true);
      for (const { role, task } of pp.tasks) {
        const where = `${host.name} | ${role.name} | ${task.name}`;
        const probe = async (cmd: string) => {
          seen.push(`${where}: command ${cmd}`);
          // A fresh host: nothing there yet, parent directories present.
          return { code: cmd.includes('echo absent') ? 0 : 1, stdout: cmd.includes('echo absent') ? 'absent\nparent\n' : '', stderr: '', stdoutBuffer: Buffer.from('') };
        };
        const ctx = {
          host: host as Host<any>,
          check: true,
          diff: true,
          pendingChanges: false,
          probe,
          run: probe,
          change: async (plan: ActionResult) => plan,
          request: async () => ({ status: 404, headers: {}, body: '' }),
          roleDir: role.dir,
          conn: {},
        } as unknown as ActionContext<any>;
        try {
          const action: Action<any> = typeof task.do === 'function' ? await task.do({ host, vars: host.vars, check: true, probe, ...outputs.reader({ task: task.name, uses: task.uses }) } as never) : task.do;
          actions++;
          seen.push(`${where}: ${action.module} ${action.summary}`);
          const r = await action.run(ctx);
          outputs.set(task.register, task.name, r);
          for (const d of r.diff ?? []) (files++, seen.push(`${where}: diff ${JSON.stringify(d)}`));
          if (r.msg) seen.push(`${where}: ${r.msg}`);
        } catch (e) {
          // A fake host cannot answer everything: what the action got as far as still counts.
          seen.push(`${where}: error ${(e as Error).message} ${JSON.stringify((e as { diff?: unknown }).diff ?? '')}`);
        }
      }
    }
  }
  return { seen, actions, files };
}

test('the default domain is what the shipped inventories use (so the test below means something)', () => {
  assert.is(DOMAIN, 'internal.thinkheads.ai');
  const prod = resolveInventory(phoenixInventory());
  assert.ok(stale(strings(prod.hosts.get('lxc101')!.vars)).length > 10);
});

test("the plan's texts show the domain: with the default one, site.ts's plan names it", async () => {
  const { seen } = await planTexts(resolveInventory(phoenixInventory()));
  const hits = seen.filter((s) => s.includes(DOMAIN));
  assert.ok(hits.some((s) => s.includes('diff') && s.includes(`traefik.${DOMAIN}`)), 'a rendered file names it');
  assert.ok(hits.length >= 10, `${hits.length} texts`);
});

for (const [name, build] of inventories) {
  test(`${name}: with domain "${NEW}", no host's vars name the default domain`, () => {
    const inv = resolveInventory(build());
    for (const h of inv.hosts.values()) assert.equal(stale(strings(h.vars)), [], `host ${h.name}`);
  });

  test(`${name}: every derived name is under "${NEW}"`, () => {
    const inv = resolveInventory(build());
    const v = inv.hosts.get('vm1001')!.vars;
    const under = (s: string) => s === NEW || s.endsWith(`.${NEW}`);
    const names = [
      ...v.trust.hosts.flatMap((h: { names: string[] }) => h.names),
      ...v.nginx.serverNames,
      ...v.nginx.proxiedNames,
      ...v.traefik.certificate.domains,
      ...v.swarm.tlsApi.names,
      ...v.swarm.tlsApi.clientNames,
      ...v.portainer.tls.names,
    ];
    assert.ok(names.length >= 15);
    assert.equal(names.filter((n: string) => !under(n)), []);
    assert.ok(v.trust.hosts.some((h: { names: string[] }) => h.names.includes(`ca.${NEW}`)));
    assert.is(new URL(v.certs.directory).hostname, `ca.${NEW}`);
    assert.is(v.traefik.swarm.endpoint, `tcp://vm1001.${NEW}:2376`);
    assert.equal(Object.values(v.traefik.services).map((s: any) => new URL(s.servers[0]).hostname), [`vm1001.${NEW}`, `vm1002.${NEW}`]);
    assert.equal(Object.values(v.traefik.routers).map((r: any) => r.rule), [`Host(\`portainer.${NEW}\`)`, `Host(\`qdrant.${NEW}\`)`]);
    assert.ok(v.nginx.pageText.includes(NEW));
    for (const h of inv.hosts.values()) if (h.vars.guest) assert.is(h.vars.guest.searchdomain, NEW, `host ${h.name}: guest.searchdomain`);
  });

  test(`${name}: with domain "${NEW}", site.ts's plan (actions, commands, file contents) never names the default domain`, async () => {
    const { seen, actions, files } = await planTexts(resolveInventory(build()));
    assert.ok(actions > 100, `${actions} actions`);
    assert.ok(files >= 8, `${files} rendered files`);
    assert.ok(seen.some((s) => s.includes(`traefik.${NEW}`)), 'rendered names use the new domain');
    assert.equal(seen.filter((s) => s.includes(DOMAIN)), []);
    // Every task was really driven (a reader got its producer's output; no harness gap hid a task).
    assert.equal(seen.filter((s) => /is not a function|reads the output/.test(s)), []);
  });
}

test.after(() => rmSync(tmp, { recursive: true, force: true }));
test.run();
