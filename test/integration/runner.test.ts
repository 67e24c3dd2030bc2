// The runner against real OpenSSH servers on 127.0.0.1 (test/harness/sshd.ts): a non-root
// user with sudo, host keys verified, files inspected on the "hosts" themselves.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, lstatSync, readFileSync, statSync, writeFileSync, existsSync, readdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { SshdLab } from '../harness/sshd.ts';
import { copy, file, handler, output, play, playbook, role, run, secret, shell, task, template, type CommandData, type RunResult } from '../../runner/index.ts';
import { capture, hosts, inventoryFor, snapshot, type TestVars } from './helpers.ts';

const T = suite('runner over ssh');
let lab: SshdLab;
T.before(async () => {
  lab = await hosts(3);
});
T.after(async () => {
  await lab?.stop();
  rmSync(templatesDir, { recursive: true, force: true });
});

const templatesDir = mkdtempSync(join(tmpdir(), 'phx-tpl-'));
writeFileSync(join(templatesDir, 'app.conf.hbs'), '# managed\nname={{name}}\nport={{port}}\n');

const reloadApp = handler<TestVars>('reload app', ({ vars }) => shell(`echo reload >> ${vars.root}/reloads.log`));

const app = role<TestVars>({
  name: 'app',
  tasks: [
    task({ name: 'config dir', do: ({ vars }) => file({ path: `${vars.root}/etc`, state: 'directory', mode: '0750' }) }),
    task({
      name: 'app config',
      notify: [reloadApp],
      do: ({ vars, host }) => template({ src: join(templatesDir, 'app.conf.hbs'), dest: `${vars.root}/etc/app.conf`, vars: { name: host.name, port: vars.port ?? 80 } }),
    }),
    task({ name: 'motd', notify: [reloadApp], do: ({ vars }) => copy({ dest: `${vars.root}/etc/motd`, content: 'hello\n', mode: '0644' }) }),
    task({ name: 'current link', do: ({ vars }) => file({ path: `${vars.root}/current`, state: 'link', src: `${vars.root}/etc` }) }),
    task({ name: 'init once', do: ({ vars }) => shell(`date > ${vars.root}/etc/initialized`, { creates: `${vars.root}/etc/initialized` }) }),
  ],
});
const appBook = playbook<TestVars>('app', [play({ hosts: 'test', roles: [app] })]);

const changedTasks = (r: RunResult) =>
  r.plays.flatMap((p) => Object.values(p.hosts).flatMap((h) => h.tasks.filter((t) => t.status === 'changed' || t.status === 'unknown').map((t) => `${h.host}:${t.task}`))).sort();

T('a role applied twice makes zero changes the second time', async () => {
  const inv = inventoryFor(lab);
  const first = await run(appBook, { inventory: inv, out: capture().out });
  assert.is(first.exitCode, 0);
  for (const h of ['host0', 'host1', 'host2']) assert.ok(first.recap[h]!.changed >= 5, `${h} first run changed ${first.recap[h]!.changed}`);
  const h0 = lab.hosts[0]!.root;
  assert.is(readFileSync(`${h0}/etc/app.conf`, 'utf8'), '# managed\nname=host0\nport=80\n');
  assert.is(statSync(`${h0}/etc`).mode & 0o777, 0o750);
  const second = await run(appBook, { inventory: inv, out: capture().out });
  assert.is(second.exitCode, 0);
  for (const h of ['host0', 'host1', 'host2']) assert.equal([second.recap[h]!.changed, second.recap[h]!.failed], [0, 0], h);
});

T('--check after drift reports the drift, changes nothing, and matches the real run', async () => {
  const inv = inventoryFor(lab);
  await run(appBook, { inventory: inv, out: capture().out });
  const h1 = lab.hosts[1]!.root;
  writeFileSync(`${h1}/etc/app.conf`, '# managed\nname=host1\nport=8080\n');
  chmodSync(`${h1}/etc/motd`, 0o600);
  const before = [snapshot(lab.hosts[0]!.root), snapshot(h1), snapshot(lab.hosts[2]!.root)];
  const c = capture();
  const check = await run(appBook, { inventory: inv, check: true, diff: true, out: c.out });
  const after = [snapshot(lab.hosts[0]!.root), snapshot(h1), snapshot(lab.hosts[2]!.root)];
  assert.equal(after, before, 'check mode changed a file');
  assert.equal(changedTasks(check), ['host1:app config', 'host1:motd', 'host1:reload app']);
  assert.match(c.text(), /-port=8080\n\+port=80/);
  const real = await run(appBook, { inventory: inv, out: capture().out });
  assert.equal(changedTasks(real), changedTasks(check));
  assert.is(readFileSync(`${h1}/etc/app.conf`, 'utf8'), '# managed\nname=host1\nport=80\n');
  assert.is(statSync(`${h1}/etc/motd`).mode & 0o777, 0o644);
});

T('--diff prints a unified diff of a content change; without --diff there is none', async () => {
  const inv = inventoryFor(lab, { host2: { vars: { root: lab.hosts[2]!.root, port: 81 } } });
  const c = capture();
  await run(appBook, { inventory: inv, diff: true, limit: ['host2'], out: c.out });
  const text = c.text();
  assert.match(text, new RegExp(`--- ${lab.hosts[2]!.root}/etc/app.conf \\(before\\)\\n\\+\\+\\+ .*\\(after\\)\\n@@ -1,3 \\+1,3 @@\\n # managed\\n name=host2\\n-port=80\\n\\+port=81`));
  const quiet = capture();
  await run(appBook, { inventory: inventoryFor(lab), limit: ['host2'], out: quiet.out });
  assert.not.match(quiet.text(), /^@@/m);
});

T('a handler runs once, after the tasks, only when a notifying task changed something', async () => {
  const inv = inventoryFor(lab);
  const root = lab.hosts[0]!.root;
  await run(appBook, { inventory: inv, limit: ['host0'], out: capture().out });
  const log = `${root}/reloads.log`;
  const n0 = existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean).length : 0;
  // Nothing changes: no reload.
  await run(appBook, { inventory: inv, limit: ['host0'], out: capture().out });
  assert.is(readFileSync(log, 'utf8').split('\n').filter(Boolean).length, n0);
  // Both notifying tasks change: exactly one reload, recorded after every task.
  writeFileSync(`${root}/etc/app.conf`, 'drift\n');
  writeFileSync(`${root}/etc/motd`, 'drift\n');
  const r = await run(appBook, { inventory: inv, limit: ['host0'], out: capture().out });
  assert.is(readFileSync(log, 'utf8').split('\n').filter(Boolean).length, n0 + 1);
  const tasks = r.plays[0]!.hosts.host0!.tasks;
  assert.equal(tasks.map((t) => `${t.handler ? 'handler ' : ''}${t.task}`), ['config dir', 'app config', 'motd', 'current link', 'init once', 'handler reload app']);
});

T('notified handlers still run when a later task fails, unless the play says otherwise', async () => {
  const root = lab.hosts[0]!.root;
  const log = `${root}/failing-reloads.log`;
  const h = handler<TestVars>('note', shell(`echo ran >> ${log}`));
  const r1 = role<TestVars>({
    name: 'flaky',
    tasks: [
      task({ name: 'change', notify: [h], do: shell('true') }),
      task({ name: 'break', do: shell('echo boom >&2; exit 9') }),
    ],
  });
  const inv = inventoryFor(lab);
  const res = await run(playbook('f', [play({ hosts: 'host0', roles: [r1] })]), { inventory: inv, out: capture().out });
  assert.is(res.exitCode, 2);
  assert.is(readFileSync(log, 'utf8'), 'ran\n');
  await run(playbook('f', [play({ hosts: 'host0', roles: [r1], forceHandlers: false })]), { inventory: inv, out: capture().out });
  assert.is(readFileSync(log, 'utf8'), 'ran\n');
});

T('a failing task stops only its host; the error names host, task, command and stderr', async () => {
  const r = role<TestVars>({
    name: 'mixed',
    tasks: [
      task({ name: 'maybe fail', do: ({ vars }) => shell(vars.fail ? 'echo "disk on fire" >&2; exit 5' : 'true') }),
      task({ name: 'after', do: ({ vars }) => copy({ dest: `${vars.root}/after.txt`, content: 'ran\n' }) }),
    ],
  });
  const inv = inventoryFor(lab, { host1: { vars: { root: lab.hosts[1]!.root, fail: true } } });
  const c = capture();
  const res = await run(playbook('m', [play({ hosts: 'test', roles: [r] })]), { inventory: inv, out: c.out });
  assert.is(res.exitCode, 2);
  assert.is(res.recap.host1!.status, 'failed');
  assert.is(res.recap.host0!.status, 'ok');
  assert.is(res.recap.host2!.status, 'ok');
  assert.ok(existsSync(`${lab.hosts[0]!.root}/after.txt`));
  assert.ok(existsSync(`${lab.hosts[2]!.root}/after.txt`));
  assert.not.ok(existsSync(`${lab.hosts[1]!.root}/after.txt`));
  const text = c.text();
  assert.match(text, /failed\s+host1 \| mixed \| maybe fail\n\s+error: command exited with status 5\n\s+command: echo "disk on fire" >&2; exit 5\n\s+exit status: 5\n\s+stderr: disk on fire/);
});

T('an unreachable host is its own state while the others succeed', async () => {
  const inv = inventoryFor(lab);
  inv.hosts.ghost = { address: '127.0.0.1', port: 1, user: lab.user, key: lab.clientKey, groups: ['test'], vars: { root: '/nonexistent' } };
  const c = capture();
  const res = await run(appBook, { inventory: inv, out: c.out });
  assert.is(res.exitCode, 3);
  assert.is(res.recap.ghost!.status, 'unreachable');
  assert.is(res.recap.ghost!.unreachable, 1);
  for (const h of ['host0', 'host1', 'host2']) assert.is(res.recap[h]!.status, 'ok');
  assert.match(c.text(), /unreachable\s+ghost .*\n\s+error: ghost: connection refused by \[127\.0\.0\.1\]:1/);
});

T('a host that accepts TCP but never speaks SSH times out with a clear error', async () => {
  const { createServer } = await import('node:net');
  const held: import('node:net').Socket[] = [];
  const silent = createServer((sock) => void held.push(sock));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const port = (silent.address() as import('node:net').AddressInfo).port;
  try {
    const inv = inventoryFor(lab);
    inv.hosts.mute = { address: '127.0.0.1', port, user: lab.user, key: lab.clientKey, connectTimeout: 1, groups: ['test'], vars: { root: '/nonexistent' } };
    const c = capture();
    const res = await run(appBook, { inventory: inv, limit: ['mute', 'host0'], out: c.out });
    assert.is(res.recap.mute!.status, 'unreachable');
    assert.is(res.recap.host0!.status, 'ok');
    assert.match(c.text(), new RegExp(`mute: timed out after 1s connecting to \\[127\\.0\\.0\\.1\\]:${port}`));
  } finally {
    held.forEach((s) => s.destroy());
    silent.close();
  }
});

T('a wrong host key fails with a clear error; an unknown one is refused unless accepted', async () => {
  // host0's entry in known_hosts replaced by host1's key.
  const kh = join(lab.dir, 'wrong_known_hosts');
  const wrong = `[127.0.0.1]:${lab.hosts[0]!.port} ${lab.hosts[1]!.hostKeyLine.split(' ').slice(1).join(' ')}\n`;
  writeFileSync(kh, wrong);
  const inv = { ...inventoryFor(lab), knownHosts: kh };
  const c = capture();
  const res = await run(appBook, { inventory: inv, limit: ['host0'], out: c.out });
  assert.is(res.recap.host0!.status, 'unreachable');
  assert.match(c.text(), /host key verification failed: the key of \[127\.0\.0\.1\]:\d+ \(ssh-ed25519 SHA256:\S+\) does not match/);
  assert.not.ok(existsSync(`${lab.hosts[0]!.root}/never`));

  const empty = join(lab.dir, 'empty_known_hosts');
  writeFileSync(empty, '');
  const c2 = capture();
  const res2 = await run(appBook, { inventory: { ...inventoryFor(lab), knownHosts: empty }, limit: ['host0'], out: c2.out });
  assert.is(res2.exitCode, 3);
  assert.match(c2.text(), /no key for \[127\.0\.0\.1\]:\d+ in .*--accept-new-host-keys/);
  // --accept-new-host-keys records the key; the next run verifies against it.
  const res3 = await run(appBook, { inventory: { ...inventoryFor(lab), knownHosts: empty }, limit: ['host0'], acceptNewHostKeys: true, out: capture().out });
  assert.is(res3.exitCode, 0);
  assert.match(readFileSync(empty, 'utf8'), /^\|1\|\S+ ssh-ed25519 \S+\n$/);
  const res4 = await run(appBook, { inventory: { ...inventoryFor(lab), knownHosts: empty }, limit: ['host0'], out: capture().out });
  assert.is(res4.exitCode, 0);
  // Accepting new keys never accepts a changed one.
  const res5 = await run(appBook, { inventory: inv, limit: ['host0'], acceptNewHostKeys: true, out: capture().out });
  assert.is(res5.exitCode, 3);
});

T('sudo: become runs as root, without it as the login user', async () => {
  const root = output<CommandData>('id as root');
  const user = output<CommandData>('id as the login user');
  const probe = role<TestVars>({
    name: 'who',
    tasks: [
      task({ name: 'as root', register: root, do: shell('id -u', { readOnly: true }) }),
      task({ name: 'as user', become: false, register: user, do: shell('id -un', { readOnly: true }) }),
      task({
        name: 'record',
        uses: [root, user],
        do: ({ get, vars }) => {
          return copy({ dest: `${vars.root}/who.txt`, content: `${get(root).stdout.trim()} ${get(user).stdout.trim()}\n` });
        },
      }),
    ],
  });
  const res = await run(playbook('who', [play({ hosts: 'host0', roles: [probe] })]), { inventory: inventoryFor(lab), out: capture().out });
  assert.is(res.exitCode, 0);
  assert.is(readFileSync(`${lab.hosts[0]!.root}/who.txt`, 'utf8'), `0 ${lab.user}\n`);
  // Files written through sudo are root's.
  assert.is(statSync(`${lab.hosts[0]!.root}/who.txt`).uid, 0);
});

T('ssh-agent authentication when the inventory names no key', async () => {
  const { execFileSync } = await import('node:child_process');
  const sock = join(lab.dir, 'agent.sock');
  const out = execFileSync('ssh-agent', ['-a', sock, '-s'], { encoding: 'utf8' });
  const pid = /SSH_AGENT_PID=(\d+)/.exec(out)![1]!;
  const saved = process.env.SSH_AUTH_SOCK;
  try {
    execFileSync('ssh-add', [lab.clientKey], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'ignore' });
    process.env.SSH_AUTH_SOCK = sock;
    const inv = inventoryFor(lab);
    delete inv.hosts.host2!.key;
    const res = await run(appBook, { inventory: inv, limit: ['host2'], out: capture().out });
    assert.is(res.exitCode, 0);
    // Without an agent and without a key, the error says so.
    delete process.env.SSH_AUTH_SOCK;
    const none = await run(appBook, { inventory: inv, limit: ['host2'], out: capture().out }).then(() => 'ran', (e: Error) => e.message);
    assert.match(none, /host "host2": field "key": no key configured and no ssh-agent/);
  } finally {
    if (saved === undefined) delete process.env.SSH_AUTH_SOCK;
    else process.env.SSH_AUTH_SOCK = saved;
    process.kill(Number(pid));
  }
});

T('a private key readable by others is refused, as OpenSSH does', async () => {
  const { copyFileSync } = await import('node:fs');
  const loose = join(lab.dir, 'loose_key');
  copyFileSync(lab.clientKey, loose);
  chmodSync(loose, 0o644);
  const inv = inventoryFor(lab);
  inv.hosts.host2!.key = loose;
  // Refused before any host is contacted (a usage error, exit 4 from the CLI): see preflight.test.ts.
  const err = await run(appBook, { inventory: inv, limit: ['host2'], out: capture().out }).then(() => undefined, (e: Error) => e.message);
  assert.match(err ?? 'no error', /private key .*loose_key has mode 0644; it must be 0600/);
});

T('sudo with a password: sent only at sudo\'s prompt, a wrong one is a clear error, never printed', async () => {
  const { execFileSync } = await import('node:child_process');
  // A user whose sudo asks for a password (the harness user's does not).
  const user = 'phxpw';
  const pw = 'pw-Zq81-not-in-argv';
  execFileSync('sh', ['-c', `id ${user} >/dev/null 2>&1 || useradd -m -s /bin/sh ${user}; chpasswd; echo '${user} ALL=(ALL) ALL' > /etc/sudoers.d/${user}; chmod 0440 /etc/sudoers.d/${user}`], { input: `${user}:${pw}\n` });
  try {
    const who = role<TestVars>({ name: 'who', tasks: [task({ name: 'uid', do: shell('id -u', { readOnly: true }) })] });
    const pb = playbook('pw', [play({ hosts: 'host0', roles: [who] })]);
    const inv = inventoryFor(lab, { host0: { user, becomePassword: secret(pw, 'sudo password') } });
    const c = capture();
    const ok = await run(pb, { inventory: inv, out: c.out });
    assert.is(ok.exitCode, 0, c.text());
    assert.is(ok.plays[0]!.hosts.host0!.tasks[0]!.msg, '0');
    const bad = capture();
    const wrong = await run(pb, { inventory: inventoryFor(lab, { host0: { user, becomePassword: secret('wrong-password-1234') } }), out: bad.out });
    assert.is(wrong.exitCode, 3);
    assert.match(bad.text(), /sudo as phxpw failed: the become password was rejected/);
    const none = capture();
    const without = await run(pb, { inventory: inventoryFor(lab, { host0: { user } }), out: none.out });
    assert.is(without.exitCode, 3);
    assert.match(none.text(), /sudo as phxpw failed: .*password is required.*NOPASSWD, or set becomePassword/);
    // With NOPASSWD sudo (the harness user) a configured password is never sent to the shell.
    const nopw = capture();
    const r = await run(pb, { inventory: inventoryFor(lab, { host0: { becomePassword: secret('unused-password-5678') } }), out: nopw.out });
    assert.is(r.exitCode, 0);
    assert.not.match(lab.hosts[0]!.logs() + nopw.text() + c.text() + bad.text(), /pw-Zq81|unused-password|wrong-password/);
  } finally {
    execFileSync('sh', ['-c', `rm -f /etc/sudoers.d/${user}`]);
  }
});

T('copy refuses to replace a symlink; a handler can set its own become', async () => {
  const { symlinkSync } = await import('node:fs');
  const root = lab.hosts[1]!.root;
  writeFileSync(`${root}/real.conf`, 'real\n');
  symlinkSync(`${root}/real.conf`, `${root}/linked.conf`);
  const asUser = handler<TestVars>('as user', ({ vars }) => shell(`id -un > ${vars.root}/handler-user.txt`), { become: false });
  const r = role<TestVars>({
    name: 'ln',
    tasks: [
      task({ name: 'notify', notify: [asUser], do: shell('true') }),
      task({ name: 'through link', do: ({ vars }) => copy({ dest: `${vars.root}/linked.conf`, content: 'new\n' }) }),
    ],
  });
  const c = capture();
  const res = await run(playbook('ln', [play({ hosts: 'host1', roles: [r] })]), { inventory: inventoryFor(lab), out: c.out });
  assert.is(res.exitCode, 2);
  assert.match(c.text(), /linked\.conf: dest is a symlink \(-> .*real\.conf\)/);
  assert.ok(lstatSync(`${root}/linked.conf`).isSymbolicLink());
  assert.is(readFileSync(`${root}/real.conf`, 'utf8'), 'real\n');
  // The handler still ran (forceHandlers), as the login user rather than root.
  assert.is(readFileSync(`${root}/handler-user.txt`, 'utf8'), `${lab.user}\n`);
});

T('a jump host: host1 reached only through host0', async () => {
  const inv = inventoryFor(lab);
  inv.hosts.host1!.jump = 'host0';
  const r = role<TestVars>({ name: 'j', tasks: [task({ name: 'mark', do: ({ vars }) => copy({ dest: `${vars.root}/via-jump`, content: 'yes\n' }) })] });
  const res = await run(playbook('j', [play({ hosts: 'host1', roles: [r] })]), { inventory: inv, out: capture().out });
  assert.is(res.exitCode, 0);
  assert.ok(existsSync(`${lab.hosts[1]!.root}/via-jump`));
  // The tunnelled connection is made from host0's sshd.
  assert.match(lab.hosts[0]!.logs(), /direct-tcpip|Accepted publickey/);
});

T('secrets reach neither the output, the diff nor the JSON report, but do reach the host, 0600', async () => {
  const token = secret('S3CRET-token-do-not-print-4242', 'api token');
  const r = role<TestVars>({
    name: 'sec',
    tasks: [
      task({ name: 'token file', do: ({ vars }) => copy({ dest: `${vars.root}/token`, content: token }) }),
      task({ name: 'token in template', do: ({ vars }) => template({ src: join(templatesDir, 'app.conf.hbs'), dest: `${vars.root}/app-with-secret.conf`, vars: { name: token, port: 1 } }) }),
      task({ name: 'use token', do: shell('test -n "$TOKEN" && echo "$TOKEN" >&2 && exit 3', { env: { TOKEN: token } }), ignoreErrors: true }),
    ],
  });
  const json = join(lab.dir, 'report.json');
  // An existing world-readable file that a secret is written into becomes 0600.
  writeFileSync(`${lab.hosts[2]!.root}/token`, 'old\n', { mode: 0o644 });
  const c = capture();
  const res = await run(playbook('s', [play({ hosts: 'host2', roles: [r] })]), { inventory: inventoryFor(lab), diff: true, json, out: c.out });
  assert.is(res.exitCode, 0);
  // The failing "use token" task had ignoreErrors: counted as ignored, not failed.
  assert.equal([res.recap.host2!.failed, res.recap.host2!.ignored], [0, 1]);
  assert.match(c.text(), /ignored=1/);
  const root = lab.hosts[2]!.root;
  assert.is(readFileSync(`${root}/token`, 'utf8'), 'S3CRET-token-do-not-print-4242');
  assert.is(statSync(`${root}/token`).mode & 0o777, 0o600);
  assert.match(readFileSync(`${root}/app-with-secret.conf`, 'utf8'), /name=S3CRET-token-do-not-print-4242/);
  assert.is(statSync(`${root}/app-with-secret.conf`).mode & 0o777, 0o600);
  const report = readFileSync(json, 'utf8');
  assert.not.match(c.text(), /S3CRET-token/);
  assert.not.match(report, /S3CRET-token/);
  assert.match(c.text(), /stderr: \*\*\*\*\*\*\*\*/); // the failing command's stderr, masked
  assert.is(JSON.parse(report).plays[0].hosts.host2.tasks.length, 3);
});

T('copy validate: a rejected file leaves the old one in place and no temp file behind', async () => {
  const root = lab.hosts[0]!.root;
  const put = (content: string) =>
    run(playbook('v', [play({ hosts: 'host0', roles: [role<TestVars>({ name: 'v', tasks: [task({ name: 'conf', do: copy({ dest: `${root}/valid.conf`, content, validate: 'grep -q "^ok" %s' }) })] })] })]), {
      inventory: inventoryFor(lab),
      out: capture().out,
    });
  assert.is((await put('ok=1\n')).exitCode, 0);
  const res = await put('broken\n');
  assert.is(res.exitCode, 2);
  assert.is(readFileSync(`${root}/valid.conf`, 'utf8'), 'ok=1\n');
  assert.equal(readdirSync(root).filter((f) => f.startsWith('.phx-')), []);
});

T.run();
