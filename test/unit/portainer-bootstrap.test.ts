// The one-off Portainer of a fresh swarm (roles/portainer/bootstrap.ts): when it is started,
// what it is started with (the stack's own server: image, arguments, volume, certificate,
// password file from stdin), check mode, and a deployed Portainer that does not answer.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { secret, type ActionContext } from '../../runner/index.ts';
import type { ExecOptions } from '../../runner/connection/types.ts';
import { dockerRunArgs, portainerBootstrap, portainerHandover, type BootstrapData } from '../../roles/portainer/bootstrap.ts';
import { syncStack } from '../../roles/portainer/sync.ts';
import { FakePortainer } from '../contract/fake-portainer.ts';

process.env.PHOENIX_PORTAINER_ADMIN_PASSWORD = 'env-admin-password-for-the-test';
process.env.PHOENIX_QDRANT_API_KEY = 'env-qdrant-key-for-the-test';
const { oneOffFor, apiOptions } = await import('../../playbooks/sync.ts');
const { phoenix } = await import('../../inventory.ts');

const fake = await new FakePortainer().start();
const PASSWORD = secret(fake.password, 'portainer admin');
const DEAD = 'https://127.0.0.1:1'; // nothing listens there

function ctx(o: { check?: boolean; stackInSwarm?: boolean } = {}) {
  const cmds: { cmd: string; opts?: ExecOptions }[] = [];
  const c: ActionContext = {
    host: { name: 'vm1001' } as ActionContext['host'],
    conn: {} as ActionContext['conn'],
    check: o.check ?? false,
    diff: false,
    pendingChanges: false,
    run: async (cmd, opts) => {
      cmds.push({ cmd, opts });
      const stdout = cmd.startsWith('docker service ls') && o.stackInSwarm ? 'abc123\n' : '';
      return { code: 0, stdout, stderr: '', stdoutBuffer: Buffer.from(stdout) };
    },
    probe: (cmd, opts) => c.run(cmd, { ...opts, readOnly: true }),
    change: async (plan, apply) => (c.check ? plan : ((await apply()) ?? plan)),
    request: () => Promise.reject(new Error('no HTTP in this test')),
  };
  return { c, cmds };
}
const oneOff = {
  name: 'portainer-bootstrap',
  image: 'portainer/portainer-ce:2.21.5',
  args: ['-H', 'unix:///var/run/docker.sock', '--admin-password-file', '/run/secrets/portainer_admin_password'],
  mounts: [{ source: 'portainer_data', target: '/data' }, { source: '/etc/letsencrypt', target: '/certs', readOnly: true }],
  files: [{ target: '/run/secrets/portainer_admin_password', content: PASSWORD }],
  publish: { host: 9444, container: 9443 },
};
const api = (url: string) => ({ url, username: 'admin', password: PASSWORD, ca: fake.pki.ca });

test('Portainer answers: nothing to start, the normal URL is used', async () => {
  const { c, cmds } = ctx();
  const r = await portainerBootstrap({ api: api(fake.url), bootstrapUrl: DEAD, stack: 'portainer_service', oneOff }).run(c);
  assert.is(r.changed, false);
  assert.equal(r.data, { url: fake.url, bootstrapped: false } satisfies BootstrapData);
  assert.equal(cmds, []);
});

test('no Portainer and no stack, check mode: says it would start one, starts nothing', async () => {
  const { c, cmds } = ctx({ check: true });
  const r = await portainerBootstrap({ api: api(DEAD), bootstrapUrl: fake.url, stack: 'portainer_service', oneOff, timeout: 1 }).run(c);
  assert.is(r.changed, true);
  assert.match(r.msg!, /would start a one-off Portainer on :9444/);
  assert.equal((r.data as BootstrapData).wouldBootstrap, true);
  assert.equal(cmds.map((x) => x.cmd.split(' ').slice(0, 4).join(' ')), ['docker service ls -q'], 'only the probe ran');
});

test("fresh lab, check mode: the step-ca root is not exported yet (no CA file): it would start a one-off, no failure; a real run fails at once naming the file", async () => {
  const missing = { ...api(fake.url), ca: '/nonexistent/phoenix-root-ca.crt' };
  const { c, cmds } = ctx({ check: true });
  const r = await portainerBootstrap({ api: missing, bootstrapUrl: fake.url, stack: 'portainer_service', oneOff, timeout: 1 }).run(c);
  assert.is(r.changed, true);
  assert.equal((r.data as BootstrapData).wouldBootstrap, true);
  assert.equal(cmds.map((x) => x.cmd.split(' ').slice(0, 4).join(' ')), ['docker service ls -q'], 'only the probe ran');
  const real = ctx();
  try {
    await portainerBootstrap({ api: missing, bootstrapUrl: fake.url, stack: 'portainer_service', oneOff, timeout: 60 }).run(real.c);
    assert.unreachable('a missing CA file in a real run is an error');
  } catch (e) {
    assert.match((e as Error).message, /\/nonexistent\/phoenix-root-ca\.crt/);
  }
  assert.equal(real.cmds, [], 'nothing ran on the host');
});

test("fresh lab, check mode: a later stack (qdrant) with the step-ca root not exported yet is unknown, not failed; a real run fails naming the file", async () => {
  const missing = { ...api(fake.url), ca: '/nonexistent/phoenix-root-ca.crt' };
  const stack = { name: 'qdrant', content: 'services: {}\n' };
  const { c, cmds } = ctx({ check: true });
  const r = await syncStack({ api: missing, stack }).run(c);
  assert.is(r.changed, 'unknown');
  assert.match(r.msg!, /\/nonexistent\/phoenix-root-ca\.crt.*not exported yet/);
  assert.equal(cmds, [], 'nothing ran on the host');
  const real = ctx();
  try {
    await syncStack({ api: missing, stack }).run(real.c);
    assert.unreachable('a missing CA file in a real run is an error');
  } catch (e) {
    assert.match((e as Error).message, /\/nonexistent\/phoenix-root-ca\.crt/);
  }
  assert.equal(real.cmds, []);
});

test('no Portainer and no stack: the one-off is started (password from stdin, never argv) and answers', async () => {
  const { c, cmds } = ctx();
  const r = await portainerBootstrap({ api: api(DEAD), bootstrapUrl: fake.url, stack: 'portainer_service', oneOff, timeout: 5 }).run(c);
  assert.is(r.changed, true);
  assert.equal(r.data, { url: fake.url, bootstrapped: true } satisfies BootstrapData);
  const write = cmds.find((x) => x.cmd.includes('cat > /run/phoenix-portainer-bootstrap/f0'))!;
  assert.is(write.opts?.stdin, PASSWORD, 'the password goes on stdin');
  const run = cmds.find((x) => x.cmd.startsWith("'docker' 'run'"))!;
  assert.is(run.cmd, "'docker' 'run' '-d' '--name' 'portainer-bootstrap' '--label' 'phoenix.portainer-bootstrap=true' '-p' '9444:9443' '-v' 'portainer_data:/data' '-v' '/etc/letsencrypt:/certs:ro' '-v' '/run/phoenix-portainer-bootstrap/f0:/run/secrets/portainer_admin_password:ro' 'portainer/portainer-ce:2.21.5' '-H' 'unix:///var/run/docker.sock' '--admin-password-file' '/run/secrets/portainer_admin_password'");
  for (const x of cmds) assert.not.ok(x.cmd.includes(fake.password), 'no password in a command line');
  assert.ok(cmds.findIndex((x) => x.cmd.startsWith("'docker' 'run'")) > cmds.findIndex((x) => x === write), 'the file exists before the container');
});

test('the one-off does not answer (e.g. a certificate the root does not sign): removed again, with its password file', async () => {
  const { c, cmds } = ctx();
  const e = (await portainerBootstrap({ api: api(DEAD), bootstrapUrl: DEAD, stack: 'portainer_service', oneOff, timeout: 0.1 })
    .run(c)
    .catch((x: Error) => x)) as Error;
  assert.match(e.message, /the one-off Portainer at https:\/\/127\.0\.0\.1:1 did not answer within 0\.1s/);
  assert.match(cmds.at(-1)!.cmd, /^docker rm -f 'portainer-bootstrap' >\/dev\/null 2>&1; rm -rf \/run\/phoenix-portainer-bootstrap$/);
});

test('the stack is deployed but Portainer does not answer: an error naming it, never a one-off', async () => {
  const { c, cmds } = ctx({ stackInSwarm: true });
  const e = (await portainerBootstrap({ api: api(DEAD), bootstrapUrl: fake.url, stack: 'portainer_service', oneOff, timeout: 0.1 })
    .run(c)
    .catch((x: Error) => x)) as Error;
  assert.match(e.message, /Portainer \(stack portainer_service\) at https:\/\/127\.0\.0\.1:1 did not answer within 0\.1s: .*ECONNREFUSED/);
  assert.not.ok(cmds.some((x) => x.cmd.includes("'run'")));
});

test('hand-over: the one-off removed, then the stack ready through the normal API', async () => {
  fake.external.push('portainer_service'); // its services run (the fake answers tasks for it)
  const { c, cmds } = ctx({ stackInSwarm: true });
  const r = await portainerHandover({ api: api(fake.url), plan: { name: 'portainer_service', content: '', health: [] }, oneOff: 'portainer-bootstrap', timeout: 5 }).run(c);
  assert.match(r.msg!, /one-off Portainer removed; stack portainer_service ready/);
  assert.match(cmds[0]!.cmd, /^docker rm -f 'portainer-bootstrap'/);
  assert.equal(fake.violations, []);
});

test('hand-over when the stack was not created: an error at once, the one-off still removed', async () => {
  const { c, cmds } = ctx({ stackInSwarm: false });
  const e = (await portainerHandover({ api: api(DEAD), plan: { name: 'portainer_service', content: '' }, oneOff: 'portainer-bootstrap', timeout: 60 })
    .run(c)
    .catch((x: Error) => x)) as Error;
  assert.match(e.message, /stack portainer_service was not created: no Portainer is left/);
  assert.match(cmds[0]!.cmd, /^docker rm -f 'portainer-bootstrap'/);
});

test("the one-off of the Phoenix inventory is the stack's own server, on httpsPort + 1", () => {
  const vars = phoenix.vars as Parameters<typeof oneOffFor>[0];
  const o = oneOffFor(vars);
  assert.is(o.image, vars.portainer.image);
  assert.equal(o.publish, { host: 9444, container: 9443 });
  assert.ok(o.args.includes('--admin-password-file'));
  assert.ok(o.mounts.some((m) => m.source === 'portainer_data' && m.target === '/data'), 'the same data volume');
  assert.ok(o.mounts.some((m) => m.source === '/var/run/docker.sock'));
  assert.equal(o.files.map((f) => f.target), ['/run/secrets/portainer_admin_password']);
  assert.is(o.files[0]!.content.reveal(), 'env-admin-password-for-the-test');
  assert.ok(dockerRunArgs(o).every((a) => !a.includes('env-admin-password')));
  // The API: the name in Portainer's certificate, resolved to the manager, the step-ca root.
  const a = apiOptions(vars);
  assert.is(a.url, `https://${vars.portainer.tls.names[0]}:9443`);
  assert.equal(a.resolve, { [vars.portainer.tls.names[0]!]: vars.swarm.advertise.vm1001 });
  assert.is(a.ca, vars.stepCa.exportRoot);
});

test.after(async () => {
  await fake.stop();
});

test.run();
