// The traefik role's shape: --tags traefik selects exactly its tasks on the traefik host; the
// certificate tasks and the deploy hook fit together (paths, user, the reload trigger).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveInventory, resolvePlan } from '../../runner/index.ts';
import phoenix, { type PhoenixVars } from '../../inventory.ts';
import { site } from '../../playbooks/site.ts';
import traefik, { deployHookScript } from '../../roles/traefik/index.ts';
import { certificatePaths, TLS_FILE } from '../../roles/traefik/config.ts';

const inv = resolveInventory(phoenix);
const t = (phoenix.vars as PhoenixVars).traefik;

test('--tags traefik selects exactly the traefik role, on lxc102', () => {
  const plan = resolvePlan(site, inv, { tags: ['traefik'] }).filter((p) => p.tasks.length);
  assert.equal(plan.map((p) => p.play.name), ['traefik']);
  assert.equal(plan[0]!.hosts.map((h) => h.name), ['lxc102']);
  assert.equal(plan[0]!.tasks.map((x) => x.task.name), traefik.tasks.map((x) => x.name));
  // ...and the traefik role is in no other tag's selection but its own (and proxy).
  const others = resolvePlan(site, inv, { tags: ['nginx'] }).flatMap((p) => p.tasks);
  assert.not.ok(others.some((x) => x.role === traefik));
});

test('config is rendered and checked before anything is written; the certificate comes before the TLS file', () => {
  const names = traefik.tasks.map((x) => x.name);
  assert.is(names[0], 'render and check config');
  const at = (n: string) => names.indexOf(n);
  assert.ok(at('certificate traefik') > at('traefik answers /ping'), 'Traefik must route the ACME challenge before certbot asks for it');
  assert.ok(at('TLS config') > at('certificate traefik'));
  assert.ok(at('traefik serves TLS') > at('TLS config'));
});

test("the deploy hook copies certbot's files to the paths the TLS file lists, for the traefik user, then touches the TLS file", () => {
  const s = deployHookScript(t);
  const { dir, certFile, keyFile } = certificatePaths(t);
  assert.ok(certFile === `${dir}/fullchain.pem` && keyFile === `${dir}/privkey.pem`);
  assert.match(s, /^#!\/bin\/sh\n/);
  assert.match(s, /live=\/etc\/letsencrypt\/live\/traefik\n/);
  assert.match(s, new RegExp(`dest=${dir}\\n`));
  assert.match(s, /for f in fullchain\.pem privkey\.pem/);
  assert.match(s, /chown root:traefik "\$t"/);
  assert.match(s, /chmod 0640 "\$t"/);
  assert.match(s, /mv -f "\$t" "\$dest\/\$f"/);
  assert.match(s, new RegExp(`touch ${t.dynamicDir}/${TLS_FILE}`));
});

test('the deploy hook, run: copies appear 0640 with the same bytes, the TLS file is touched; a second run touches nothing', () => {
  const root = mkdtempSync(join(tmpdir(), 'phx-hook-'));
  try {
    const live = join(root, 'live');
    mkdirSync(live);
    writeFileSync(join(live, 'fullchain.pem'), 'CERT\n');
    writeFileSync(join(live, 'privkey.pem'), 'KEY\n');
    const dyn = join(root, 'dynamic');
    mkdirSync(dyn);
    writeFileSync(join(dyn, TLS_FILE), 'tls: {}\n');
    utimesSync(join(dyn, TLS_FILE), 1, 1);
    // The same script, pointed at a scratch tree, as the current user's group.
    const group = spawnSync('id', ['-gn'], { encoding: 'utf8' }).stdout.trim();
    const tt = { ...t, user: group, dynamicDir: dyn, certificate: { ...t.certificate, tlsDir: join(root, 'tls') } };
    const script = deployHookScript(tt).replace('live=/etc/letsencrypt/live/traefik', `live=${live}`).replace(`chown root:${group}`, `chown :${group}`).replace('-o root ', '');
    const run = () => spawnSync('sh', ['-c', script], { encoding: 'utf8' });
    const r = run();
    assert.is(r.status, 0, r.stderr);
    const { certFile, keyFile } = certificatePaths(tt);
    assert.is(readFileSync(certFile, 'utf8'), 'CERT\n');
    assert.is(readFileSync(keyFile, 'utf8'), 'KEY\n');
    assert.is(statSync(keyFile).mode & 0o777, 0o640);
    assert.is(statSync(join(root, 'tls')).mode & 0o777, 0o750);
    assert.ok(statSync(join(dyn, TLS_FILE)).mtimeMs > 1000, 'the TLS file was not touched');
    utimesSync(join(dyn, TLS_FILE), 1, 1);
    assert.is(run().status, 0);
    assert.is(statSync(join(dyn, TLS_FILE)).mtimeMs, 1000, 'nothing changed, yet the TLS file was touched');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
