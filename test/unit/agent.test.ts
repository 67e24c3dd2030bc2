// The warm-connection agent's pieces that need no sshd: the wire encoding of commands (secrets
// stay Secrets, bytes stay bytes, errors keep their class and text), what makes two leases share
// a connection, the directory checks, durations, and the CLI switches.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { decodeError, decodeOptions, decodeResult, encodeError, encodeOptions, encodeResult, poolKey, type LeaseRequest } from '../../runner/agent/protocol.ts';
import { agentDir, checkDir, parseDuration } from '../../runner/agent/paths.mjs';
import { formatAgent } from '../../runner/report.ts';
import { ConnectionError } from '../../runner/connection/types.ts';
import { AbortedError } from '../../runner/connection/shell.ts';
import { isSecret, secret } from '../../runner/secret.ts';
import { parseCli } from '../../runner/cli.ts';

const U = suite('agent protocol and paths');
const base = mkdtempSync(join(tmpdir(), 'phx-agent-unit-'));
U.after(() => rmSync(base, { recursive: true, force: true }));

U('exec options cross the wire with secrets as Secrets and bytes as bytes; JSON of them names no secret outside its field', () => {
  const wire = encodeOptions({ stdin: secret('s3cret-stdin'), env: { A: 'plain', B: secret('s3cret-env') }, cwd: '/tmp', become: false, timeout: 5, readOnly: true });
  const back = decodeOptions(JSON.parse(JSON.stringify(wire)));
  assert.ok(isSecret(back.stdin));
  assert.is((back.stdin as { reveal(): string }).reveal(), 's3cret-stdin');
  assert.is(back.env!.A, 'plain');
  assert.ok(isSecret(back.env!.B));
  assert.equal([back.cwd, back.become, back.timeout, back.readOnly], ['/tmp', false, 5, true]);
  const bin = Buffer.from([0, 255, 10, 13]);
  assert.ok(Buffer.isBuffer(decodeOptions(JSON.parse(JSON.stringify(encodeOptions({ stdin: bin })))).stdin));
  assert.equal(decodeOptions(encodeOptions({ stdin: bin })).stdin, bin);
  assert.equal(decodeOptions(encodeOptions({})), {});
});

U('results keep binary stdout; errors keep their class, host and exact message', () => {
  const out = Buffer.from([0xff, 0xfe, 0x41]);
  const r = decodeResult(JSON.parse(JSON.stringify(encodeResult({ code: 3, stdout: out.toString('utf8'), stderr: 'e\n', stdoutBuffer: out }))));
  assert.equal([r.code, r.stderr], [3, 'e\n']);
  assert.equal(r.stdoutBuffer, out);
  const ce = decodeError(encodeError(new ConnectionError('web1', 'host key verification failed: x')));
  assert.instance(ce, ConnectionError);
  assert.is(ce.message, 'web1: host key verification failed: x');
  assert.is((ce as ConnectionError).hostName, 'web1');
  assert.instance(decodeError(encodeError(new AbortedError('web1: aborted'))), AbortedError);
  const plain = decodeError(encodeError(new Error('web1: command timed out after 1s')));
  assert.is(plain.message, 'web1: command timed out after 1s');
});

const lease = (over: Partial<LeaseRequest['host']> = {}, r: Partial<LeaseRequest> = {}): LeaseRequest => ({
  op: 'lease',
  host: { name: 'web1', address: '10.0.0.1', port: 22, user: 'deploy', key: '/k', become: true, connectTimeout: 10, keepaliveInterval: 15, keepaliveCountMax: 3, ...over },
  knownHosts: '/kh',
  acceptNewHostKeys: false,
  idleMs: 600_000,
  ...r,
});

U('a held connection is shared only by leases with the same host, user, key (content too), known_hosts, become and password', () => {
  const salt = Buffer.from('salt');
  const k = poolKey(lease(), 'h1', salt);
  assert.is(poolKey(lease(), 'h1', salt), k);
  assert.is(poolKey(lease({}, { idleMs: 5 }), 'h1', salt), k, 'the idle time is not part of it');
  for (const other of [
    poolKey(lease({ user: 'root' }), 'h1', salt),
    poolKey(lease({ port: 2222 }), 'h1', salt),
    poolKey(lease({ address: '10.0.0.2' }), 'h1', salt),
    poolKey(lease({ name: 'web2' }), 'h1', salt),
    poolKey(lease({ become: false }), 'h1', salt),
    poolKey(lease({ becomePassword: 'pw' }), 'h1', salt),
    poolKey(lease(), 'h2', salt),
    poolKey(lease({}, { knownHosts: '/other' }), 'h1', salt),
  ])
    assert.is.not(other, k);
  assert.is.not(poolKey(lease({ becomePassword: 'a' }), 'h1', salt), poolKey(lease({ becomePassword: 'b' }), 'h1', salt));
  assert.not.ok(poolKey(lease({ becomePassword: 'pw-visible' }), 'h1', salt).includes('pw-visible'), 'the password is hashed');
});

U('the agent directory: created 0700; refused when others can enter it, it is a symlink or a file, or another user owns it', () => {
  const d = join(base, 'ok');
  checkDir(d);
  checkDir(d);
  const open = join(base, 'open');
  mkdirSync(open);
  chmodSync(open, 0o750);
  assert.throws(() => checkDir(open), /has mode 0750; it must be 0700/);
  const link = join(base, 'link');
  symlinkSync(d, link);
  assert.throws(() => checkDir(link), /is a symlink; refusing to use it/);
  const f = join(base, 'file');
  writeFileSync(f, '');
  assert.throws(() => checkDir(f), /is not a directory/);
  if (process.getuid?.() === 0) {
    const theirs = join(base, 'theirs');
    mkdirSync(theirs, { mode: 0o700 });
    chownSync(theirs, 65534, 65534);
    assert.throws(() => checkDir(theirs), /is owned by uid 65534, not by you \(uid 0\); refusing to use it/);
  }
  assert.throws(() => checkDir(join(base, 'missing'), { create: false }), /does not exist/);
});

U('where the socket lives: $PHOENIX_AGENT_DIR, $XDG_RUNTIME_DIR/phoenix-agent, /tmp/phoenix-agent-$UID', () => {
  assert.is(agentDir({ PHOENIX_AGENT_DIR: '/x/y' }), '/x/y');
  assert.is(agentDir({ XDG_RUNTIME_DIR: '/run/user/1000' }), '/run/user/1000/phoenix-agent');
  assert.is(agentDir({}), `/tmp/phoenix-agent-${process.getuid?.() ?? 0}`);
});

U('durations', () => {
  assert.is(parseDuration('10m'), 600_000);
  assert.is(parseDuration('90s'), 90_000);
  assert.is(parseDuration('600'), 600_000);
  assert.is(parseDuration('1h'), 3_600_000);
  assert.is(parseDuration('250ms'), 250);
  assert.is(parseDuration('ten'), undefined);
  assert.is(parseDuration('-1m'), undefined);
});

U('CLI: --agent, --no-agent, --agent-idle; contradictions and bad durations are usage errors', () => {
  assert.is(parseCli(['--agent']).agent, true);
  assert.is(parseCli(['--no-agent']).agent, false);
  assert.is(parseCli([]).agent, undefined);
  assert.is(parseCli(['--agent', '--agent-idle', '2m']).agentIdle, '2m');
  assert.throws(() => parseCli(['--agent', '--no-agent']), /contradict/);
  assert.throws(() => parseCli(['--agent-idle', 'soon']), /--agent-idle: expected a duration/);
});

U('the recap line', () => {
  assert.is(formatAgent({ socket: '/s', reused: ['a', 'b'], direct: [] }), 'warm: a, b (connections reused from the agent)');
  assert.is(formatAgent({ socket: '/s', reused: [], direct: ['c'] }), 'warm: none (the agent connected every host afresh)\ndirect: c (the agent could not be used; connected directly)');
});

U.run();
