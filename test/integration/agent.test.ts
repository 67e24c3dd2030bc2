// The warm-connection agent (issue 18 item 1, docs/agent.md) against real OpenSSH servers
// (test/harness/sshd.ts). Handshakes are counted from sshd's own log ("Accepted publickey"),
// never from timing. Every test uses its own agent directory ($PHOENIX_AGENT_DIR).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SshdLab } from '../harness/sshd.ts';
import { copy, play, playbook, role, run, secret, shell, task, type RunResult } from '../../runner/index.ts';
import { request } from '../../runner/agent/client.ts';
import { agentCommand } from '../../runner/agent/ctl.mjs';
import { capture, hosts, inventoryFor, type TestVars } from './helpers.ts';

const A = suite('warm-connection agent');
let lab: SshdLab;
let base: string;
const extra: ChildProcess[] = [];
A.before(async () => {
  lab = await hosts(2);
  base = mkdtempSync('/tmp/phx-agent-test-');
});
A.after(async () => {
  for (const dir of dirs) await request(join(dir, 'agent.sock'), { op: 'stop' }).catch(() => undefined);
  for (const c of extra) c.kill('SIGKILL');
  await lab?.stop();
  rmSync(base, { recursive: true, force: true });
});

const dirs: string[] = [];
/** A fresh agent directory for one test; PHOENIX_AGENT_DIR points at it. */
function agentDir(): string {
  const d = join(base, `a${dirs.length}`);
  dirs.push(d);
  process.env.PHOENIX_AGENT_DIR = d;
  return d;
}
const sock = (d: string) => join(d, 'agent.sock');
const status = (d: string) => request(sock(d), { op: 'status' });
const accepted = (i: number) => (lab.hosts[i]!.logs().match(/Accepted publickey/g) ?? []).length;
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

const marker = (run: string) =>
  playbook<TestVars>('warm', [
    play({
      hosts: 'test',
      roles: [
        role<TestVars>({
          name: 'w',
          tasks: [
            task({ name: 'as root', do: () => shell('test "$(id -u)" = 0') }),
            task({ name: 'mark', do: ({ vars }) => copy({ dest: `${vars.root}/mark-${run}`, content: `${run}\n` }) }),
          ],
        }),
      ],
    }),
  ]);

async function go(book = marker('x'), o: Parameters<typeof run>[1] = {}) {
  const c = capture();
  const e = capture();
  const r: RunResult = await run(book, { inventory: inventoryFor(lab), out: c.out, err: e.out, agent: true, ...o });
  return { r, text: c.text(), err: e.text() };
}

A('a second run reuses both hosts: no new SSH handshake, the recap and --json say which hosts were warm', async () => {
  const d = agentDir();
  const before = [accepted(0), accepted(1)];
  const first = await go(marker('one'));
  assert.is(first.r.exitCode, 0, first.text);
  assert.match(first.text, /warm: none/);
  assert.equal([accepted(0), accepted(1)], [before[0]! + 1, before[1]! + 1], 'one handshake per host in the first run');
  const json = join(base, 'run.json');
  const second = await go(marker('two'), { json });
  assert.is(second.r.exitCode, 0, second.text);
  assert.match(second.text, /\nwarm: host0, host1 \(connections reused from the agent\)/);
  assert.equal([accepted(0), accepted(1)], [before[0]! + 1, before[1]! + 1], 'no handshake in the second run');
  assert.ok(existsSync(join(lab.hosts[0]!.root, 'mark-two')));
  const report = JSON.parse(readFileSync(json, 'utf8'));
  assert.equal(report.agent.reused, ['host0', 'host1']);
  const s = await status(d);
  assert.is(s.handshakes, 2);
  assert.is(s.reuses, 2);
  assert.equal(s.hosts.map((h: { host: string; state: string }) => `${h.host}:${h.state}`).sort(), ['host0:idle', 'host1:idle']);
  // --no-agent: a direct connection, and the recap says nothing of the agent.
  const direct = await go(marker('three'), { agent: false });
  assert.is(direct.r.exitCode, 0);
  assert.not.match(direct.text, /warm:/);
  assert.is(accepted(0), before[0]! + 2);
});

A('a host without a key authenticates through the run\'s own ssh-agent, not the daemon\'s environment', async () => {
  agentDir();
  const { execFileSync } = await import('node:child_process');
  const agentSock = join(base, `ssh-agent-${process.pid}.sock`);
  const out = execFileSync('ssh-agent', ['-a', agentSock, '-s'], { encoding: 'utf8' });
  const pid = Number(/SSH_AGENT_PID=(\d+)/.exec(out)![1]);
  const saved = process.env.SSH_AUTH_SOCK;
  try {
    execFileSync('ssh-add', [lab.clientKey], { env: { ...process.env, SSH_AUTH_SOCK: agentSock }, stdio: 'ignore' });
    process.env.SSH_AUTH_SOCK = agentSock; // the run's; the daemon it starts inherits it too...
    const inv = inventoryFor(lab);
    delete inv.hosts.host0!.key;
    delete inv.hosts.host1!.key;
    const c = capture();
    const first = await run(marker('keyless'), { inventory: inv, limit: ['host0'], out: c.out, agent: true });
    assert.is(first.exitCode, 0, c.text());
    // ...so it is drained of keys: host1's first lease must use the socket this run sends, not the daemon's environment.
    execFileSync('ssh-add', ['-D'], { env: { ...process.env, SSH_AUTH_SOCK: agentSock }, stdio: 'ignore' });
    const other = join(base, `ssh-agent2-${process.pid}.sock`);
    const out2 = execFileSync('ssh-agent', ['-a', other, '-s'], { encoding: 'utf8' });
    const pid2 = Number(/SSH_AGENT_PID=(\d+)/.exec(out2)![1]);
    try {
      execFileSync('ssh-add', [lab.clientKey], { env: { ...process.env, SSH_AUTH_SOCK: other }, stdio: 'ignore' });
      process.env.SSH_AUTH_SOCK = other;
      const c2 = capture();
      const second = await run(marker('keyless2'), { inventory: inv, limit: ['host1'], out: c2.out, agent: true });
      assert.is(second.exitCode, 0, c2.text());
      assert.ok(existsSync(join(lab.hosts[1]!.root, 'mark-keyless2')));
    } finally {
      process.kill(pid2);
    }
  } finally {
    if (saved === undefined) delete process.env.SSH_AUTH_SOCK;
    else process.env.SSH_AUTH_SOCK = saved;
    process.kill(pid);
  }
});

A('the socket is 0600 in a 0700 directory of the user; `phoenix agent status` lists the held hosts; `stop` ends it', async () => {
  const d = agentDir();
  const r = await go();
  assert.is(r.r.exitCode, 0, r.text);
  const ds = statSync(d);
  assert.is(ds.mode & 0o777, 0o700);
  assert.is(ds.uid, process.getuid!());
  const ss = statSync(sock(d));
  assert.ok(ss.isSocket());
  assert.is(ss.mode & 0o777, 0o600);
  assert.is(statSync(join(d, 'agent.log')).mode & 0o777, 0o600);
  let out = '';
  assert.is(await agentCommand(['status'], (s) => void (out += s)), 0);
  assert.match(out, /phoenix agent: running, pid \d+/);
  assert.match(out, /host0\s+phxtest@\[127\.0\.0\.1\]:\d+\s+idle \d+s \(closes in (9m\d*s?|10m)\), reused 0×/, out);
  out = '';
  assert.is(await agentCommand(['stop'], (s) => void (out += s)), 0);
  assert.match(out, /stopped/);
  await wait(200);
  out = '';
  assert.is(await agentCommand(['status'], (s) => void (out += s)), 3);
  assert.match(out, /not running/);
});

A('an agent directory others can enter, or owned by another user, is refused: the run connects directly and says why', async () => {
  const d = agentDir();
  mkdirSync(d, { mode: 0o755 });
  chmodSync(d, 0o755);
  const r = await go();
  assert.is(r.r.exitCode, 0, r.text);
  assert.match(r.err, `phoenix: agent: agent directory ${d} has mode 0755; it must be 0700`);
  assert.match(r.err, /connecting directly/);
  assert.not.ok(existsSync(sock(d)), 'no agent was started there');
  assert.not.match(r.text, /warm:/);
  const d2 = agentDir();
  mkdirSync(d2, { mode: 0o700 });
  const pw = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('phxtest:'))!.split(':');
  chownSync(d2, Number(pw[2]), Number(pw[3]));
  const r2 = await go();
  assert.is(r2.r.exitCode, 0);
  assert.match(r2.err, `agent directory ${d2} is owned by uid ${pw[2]}, not by you (uid 0); refusing to use it`);
});

A('a host key no longer in known_hosts drops the held connection; the host fails exactly as a direct connection does', async () => {
  const d = agentDir();
  const kh = join(base, 'known_hosts-changed');
  writeFileSync(kh, readFileSync(lab.knownHosts));
  const first = await go(marker('k'), { knownHosts: kh });
  assert.is(first.r.exitCode, 0, first.text);
  // host0's entry now names another key (as after `ssh-keygen -R` + a wrong re-scan).
  const other = join(base, 'otherkey');
  rmSync(other, { force: true });
  rmSync(`${other}.pub`, { force: true });
  spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
  const blob = readFileSync(`${other}.pub`, 'utf8').split(' ')[1]!;
  writeFileSync(kh, readFileSync(lab.knownHosts, 'utf8').replace(lab.hosts[0]!.hostKeyBase64, blob));
  const warm = await go(marker('k2'), { knownHosts: kh });
  const direct = await go(marker('k3'), { knownHosts: kh, agent: false });
  assert.is(warm.r.exitCode, 3, warm.text);
  assert.is(warm.r.recap.host0!.status, 'unreachable');
  assert.is(warm.r.recap.host1!.status, 'ok');
  const msg = (x: RunResult) => x.plays[0]!.hosts.host0!.tasks[0]!.error!.message;
  assert.match(msg(warm.r), 'host key verification failed: the key of [127.0.0.1]:');
  assert.is(msg(warm.r), msg(direct.r), 'the same error text as a direct connection');
  assert.match(warm.text, /warm: host1 /);
  assert.equal((await status(d)).hosts.map((h: { host: string }) => h.host), ['host1'], 'host0 is no longer held');
});

A('a killed agent: the next run starts a new one; killed mid-run, hosts go on over direct connections and the run says so (-v)', async () => {
  const d = agentDir();
  const first = await go();
  assert.is(first.r.exitCode, 0, first.text);
  process.kill((await status(d)).pid, 'SIGKILL');
  await wait(200);
  const second = await go(marker('k1'), { verbose: 1 });
  assert.is(second.r.exitCode, 0, second.text);
  assert.match(second.err, /phoenix: agent: started \(socket /);
  assert.match(second.text, /warm: none/);
  const pid = (await status(d)).pid as number;
  const before = [accepted(0), accepted(1)];
  let arrived = 0;
  const killer = playbook<TestVars>('kill', [
    play({
      hosts: 'test',
      roles: [
        role<TestVars>({
          name: 'k',
          tasks: [
            task({ name: 'before', do: () => shell('true') }),
            task({
              // Between two commands of both hosts: no command is running when the agent dies.
              name: 'kill the agent',
              do: async ({ host }) => {
                arrived++;
                while (arrived < 2) await wait(20);
                if (host.name === 'host0') process.kill(pid, 'SIGKILL');
                await wait(300);
                return shell('true');
              },
            }),
            task({ name: 'after', do: ({ vars }) => copy({ dest: `${vars.root}/mark-after-kill`, content: 'x\n' }) }),
          ],
        }),
      ],
    }),
  ]);
  const third = await go(killer, { verbose: 1 });
  assert.is(third.r.exitCode, 0, third.text + third.err);
  assert.match(third.err, /phoenix: agent: went away: host0 connects directly from its next command/);
  assert.match(third.err, /phoenix: agent: went away: host1 connects directly from its next command/);
  assert.match(third.text, /warm: host0, host1 \(connections reused from the agent\)\ndirect: host0, host1 \(/);
  assert.equal([accepted(0), accepted(1)], [before[0]! + 1, before[1]! + 1], 'one direct connection per host');
  assert.ok(existsSync(join(lab.hosts[0]!.root, 'mark-after-kill')));
});

A('a stuck agent (it accepts connections but never answers): the host connects directly once the lease times out', async () => {
  const d = agentDir();
  const { AgentClient } = await import('../../runner/agent/client.ts');
  await AgentClient.start({ dir: d });
  const pid = (await status(d)).pid as number;
  process.kill(pid, 'SIGSTOP');
  try {
    const logs: string[] = [];
    const warnings: string[] = [];
    const agent = await AgentClient.start({ dir: d, log: (s) => logs.push(s), warn: (s) => warnings.push(s) });
    const h = lab.hosts[0]!;
    const host = { name: 'host0', address: h.address, port: h.port, user: h.user, key: h.key, become: true, connection: 'ssh' as const, connectTimeout: 1, keepaliveInterval: 15, keepaliveCountMax: 3, groups: [], vars: {} };
    const started = Date.now();
    const conn = await agent.open(host, { knownHosts: lab.knownHosts, acceptNewHostKeys: false }, async () => ({ hostName: 'host0', exec: async () => ({ code: 0, stdout: 'direct', stderr: '', stdoutBuffer: Buffer.from('direct') }), abort: async () => false, close: async () => undefined }));
    assert.is((await conn.exec('true')).stdout, 'direct');
    assert.ok(Date.now() - started >= 7000, 'after the lease timeout (3 × connectTimeout + 5 s)');
    assert.equal([...agent.fellBack], ['host0']);
    assert.match(logs.join('\n'), /agent: no lease for host0 \(the agent did not answer within 8s\): connecting directly/);
    // Said without -v, once; the next host does not wait again.
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /the agent did not answer within 8s .*this run's hosts connect directly; end it with `pkill -f -- '--dir /);
    await agent.open({ ...host, name: 'host1' }, { knownHosts: lab.knownHosts, acceptNewHostKeys: false }, async () => ({ hostName: 'host1', exec: async () => ({ code: 0, stdout: 'direct', stderr: '', stdoutBuffer: Buffer.from('direct') }), abort: async () => false, close: async () => undefined }));
    assert.not.match(logs.join('\n'), /no lease for host1/, 'the second host asked the stuck agent for no lease');
    assert.equal([...agent.fellBack], ['host0', 'host1']);
    agent.close();
  } finally {
    process.kill(pid, 'SIGCONT');
  }
});

A('two runs at once: each gets a connection of its own; later runs reuse both', async () => {
  const d = agentDir();
  const warmup = await go();
  assert.is(warmup.r.exitCode, 0);
  const [a, b] = await Promise.all([go(marker('p1')), go(marker('p2'))]);
  assert.is(a.r.exitCode, 0, a.text);
  assert.is(b.r.exitCode, 0, b.text);
  for (const h of [0, 1]) for (const m of ['p1', 'p2']) assert.ok(existsSync(join(lab.hosts[h]!.root, `mark-${m}`)), `host${h} ${m}: ${a.text}\n${b.text}`);
  const s = await status(d);
  assert.ok(s.handshakes >= 2 && s.handshakes <= 4, `handshakes ${s.handshakes}: ${JSON.stringify(s)}`);
  assert.is(s.hosts.length, s.handshakes, 'every connection made is held');
  assert.ok(s.hosts.every((h: { state: string }) => h.state === 'idle'));
  const c = await go(marker('p3'));
  assert.match(c.text, /warm: host0, host1 /);
});

A('Ctrl-C and timeouts still kill the command\'s process group through the agent', async () => {
  const d = agentDir();
  const { AgentClient } = await import('../../runner/agent/client.ts');
  const agent = await AgentClient.start({ dir: d });
  const h = lab.hosts[0]!;
  const host = { name: 'host0', address: h.address, port: h.port, user: h.user, key: h.key, become: true, connection: 'ssh' as const, connectTimeout: 10, keepaliveInterval: 15, keepaliveCountMax: 3, groups: [], vars: {} };
  const direct = () => Promise.reject(new Error('not expected'));
  const running = (arg: string) => spawnSync('pgrep', ['-xf', `sleep ${arg}`], { encoding: 'utf8' }).stdout.trim() !== '';
  const conn = await agent.open(host, { knownHosts: lab.knownHosts, acceptNewHostKeys: false }, direct);
  const p = conn.exec('sleep 3042').then(() => 'finished', (e: Error) => `${e.name}: ${e.message}`);
  for (let i = 0; i < 100 && !running('3042'); i++) await wait(50);
  assert.ok(running('3042'));
  assert.is(await conn.abort(), true);
  assert.match(await p, /^AbortedError: host0: aborted/);
  assert.not.ok(running('3042'), 'the sleep was killed');
  await conn.close();
  const conn2 = await agent.open(host, { knownHosts: lab.knownHosts, acceptNewHostKeys: false }, direct);
  const t = await conn2.exec('sleep 3043', { timeout: 1 }).then(() => 'finished', (e: Error) => e.message);
  assert.match(t, 'host0: command timed out after 1s; its process group on the host was killed');
  assert.not.ok(running('3043'));
  await conn2.close();
});

A('secrets cross the socket only in messages: the agent\'s log and command line hold no secret and no command', async () => {
  const d = agentDir();
  const pw = secret('become-pass-7f3a9c');
  const inv = inventoryFor(lab, { host0: { becomePassword: pw } });
  const book = playbook<TestVars>('secret', [
    play({
      hosts: 'test',
      roles: [
        role<TestVars>({
          name: 's',
          tasks: [
            task({
              name: 'feed a secret',
              do: () => ({
                module: 'custom',
                summary: 'secret on stdin',
                run: async (ctx) => {
                  const r = await ctx.run('cat > /dev/null && echo fed-ok', { stdin: secret('stdin-secret-91bd2e'), env: { TOKEN: secret('env-secret-5c0ffe') } });
                  return { changed: false, msg: r.stdout.trim() };
                },
              }),
            }),
          ],
        }),
      ],
    }),
  ]);
  const c = capture();
  for (let i = 0; i < 2; i++) {
    const r = await run(book, { inventory: inv, out: c.out, err: capture().out, agent: true });
    assert.is(r.exitCode, 0, c.text());
    assert.is(r.plays[0]!.hosts.host0!.tasks[0]!.msg, 'fed-ok');
  }
  const logText = readFileSync(join(d, 'agent.log'), 'utf8');
  assert.match(logText, /host0 \(phxtest@\[127\.0\.0\.1\]:\d+\): reused/);
  for (const x of ['become-pass-7f3a9c', 'stdin-secret-91bd2e', 'env-secret-5c0ffe', 'cat > /dev/null', 'fed-ok']) assert.not.ok(logText.includes(x), `log holds ${x}`);
  const pid = (await status(d)).pid;
  const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
  for (const x of ['become-pass-7f3a9c', 'stdin-secret']) assert.not.ok(cmdline.includes(x) || environ.includes(x));
});

A('idle expiry: the held connections close after --agent-idle, and the agent ends with the last one', async () => {
  const d = agentDir();
  const r = await go(marker('idle'), { agentIdle: '1s' });
  assert.is(r.r.exitCode, 0, r.text);
  assert.is((await status(d)).hosts.length, 2);
  for (let i = 0; i < 60 && existsSync(sock(d)); i++) await wait(100);
  assert.not.ok(existsSync(sock(d)), 'the agent removed its socket and ended');
  assert.match(readFileSync(join(d, 'agent.log'), 'utf8'), /host0: idle for 1s: closed[\s\S]*stopping: idle: the last held connection expired/);
});

// Last: host1's sshd is then a process of this test, whose log the harness no longer reads.
/** Kills host i's sshd (listener and sessions) and starts it again on the same port, optionally with a new host key. */
async function restartSshd(i: number, rekey: boolean) {
  const h = lab.hosts[i]!;
  const pids = spawnSync('pgrep', ['-f', h.config], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean).map(Number);
  const all = new Set(pids);
  for (const p of spawnSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' }).stdout.trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number)))
    if (all.has(p[1]!)) all.add(p[0]!);
  for (const p of [h.pid, ...all]) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  await wait(300);
  if (rekey) {
    const key = readFileSync(h.config, 'utf8').match(/^HostKey (.+)$/m)![1]!;
    rmSync(key, { force: true });
    rmSync(`${key}.pub`, { force: true });
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  }
  const c = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', h.config], { stdio: 'ignore' });
  extra.push(c);
  for (let k = 0; k < 50; k++) {
    await wait(100);
    if (spawnSync('sh', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${h.port}`], { shell: false }).status === 0) break;
  }
  await wait(200);
}

A('a restarted guest (its sshd and sessions killed): the agent reconnects once, transparently; re-keyed, the host fails as today', async () => {
  agentDir();
  const first = await go(marker('r1'));
  assert.is(first.r.exitCode, 0, first.text);
  await restartSshd(1, false);
  const second = await go(marker('r2'));
  assert.is(second.r.exitCode, 0, second.text);
  assert.is(second.r.recap.host1!.status, 'ok');
  assert.match(second.text, /warm: host0 \(/, 'host1 was connected afresh, host0 reused');
  assert.ok(existsSync(join(lab.hosts[1]!.root, 'mark-r2')));
  await restartSshd(1, true);
  const third = await go(marker('r3'));
  assert.is(third.r.exitCode, 3, third.text);
  assert.match(third.r.plays[0]!.hosts.host1!.tasks[0]!.error!.message, /^host1: host key verification failed: the key of \[127\.0\.0\.1\]:\d+ \(ssh-ed25519 SHA256:.+\) does not match /);
  // The lab's known_hosts learns the new key, for the tests after this one.
  const key = readFileSync(lab.hosts[1]!.config, 'utf8').match(/^HostKey (.+)$/m)![1]!;
  const blob = readFileSync(`${key}.pub`, 'utf8').split(' ')[1]!;
  writeFileSync(lab.knownHosts, readFileSync(lab.knownHosts, 'utf8').replace(lab.hosts[1]!.hostKeyBase64, blob));
  lab.hosts[1]!.hostKeyBase64 = blob;
});

A.run();
