// The runner's `replace` (replace, validate, restart, roll back; docs/rollback.md):
// - against a real shell in a temp directory (a fake "service" with a custom restart and a
//   readiness command): the new file goes live when the service comes back; when it does not,
//   the previous bytes are back (sha256 equal), a file that did not exist is removed, the
//   service is restarted on the previous file, and the error names the service's own words;
// - against a recording host answering like systemd: the order of operations, the journal as
//   the error, the rollback restart; check mode sends nothing but probes; same content: no
//   write, no restart; a Secret never appears in a diff, a message or a command line.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { replace, secret, Secret, TaskError, type ActionContext, type ActionResult } from '../../runner/index.ts';
import type { ExecOptions, ExecResult } from '../../runner/connection/types.ts';

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

function sh(cmd: string, o: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((res) => {
    const p = execFile('sh', ['-c', cmd], { encoding: 'buffer', timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      res({ code, stdout: stdout.toString('utf8'), stderr: stderr.toString('utf8'), stdoutBuffer: stdout });
    });
    const input = o.stdin instanceof Secret ? o.stdin.reveal() : o.stdin;
    p.stdin!.on('error', () => undefined);
    p.stdin!.end(input ?? '');
  });
}

type Sent = { cmd: string; readOnly: boolean; stdin?: string };

/** An ActionContext over a local shell (real run or check mode), recording what was sent. */
function localCtx(check = false, diff = true) {
  const sent: Sent[] = [];
  const exec = async (cmd: string, o: ExecOptions = {}, readOnly = false) => {
    sent.push({ cmd, readOnly, stdin: o.stdin instanceof Secret ? '[secret]' : o.stdin?.toString() });
    if (check && !readOnly && !o.readOnly) throw new Error(`check mode: refused ${cmd}`);
    return sh(cmd, o);
  };
  const ctx = {
    host: { name: 'h1', address: '127.0.0.1', vars: {} },
    check,
    diff,
    pendingChanges: false,
    probe: (cmd: string, o?: ExecOptions) => exec(cmd, o, true),
    run: (cmd: string, o?: ExecOptions) => exec(cmd, o),
    change: async (plan: ActionResult, apply: () => Promise<ActionResult | void>) => (check ? plan : ((await apply()) ?? plan)),
    request: async () => ({ status: 200, data: '' }),
  } as unknown as ActionContext;
  return { ctx, sent };
}

/** A fake service: "restart" copies the config to a "running" file unless the config says BAD. */
function fakeService(dir: string) {
  const conf = join(dir, 'svc.conf');
  const running = join(dir, 'running');
  return {
    conf,
    running,
    restart: `if grep -q BAD ${conf}; then echo "svc: fatal: cannot listen on :22: address already in use" > ${dir}/log; rm -f ${running}; else cp ${conf} ${running}; fi`,
    ready: { command: `test -f ${running} || { cat ${dir}/log >&2; false; }` },
  };
}

test('real shell: new content goes live, the service comes back, no previous copy is left behind; same content again: no write, no restart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'phx-replace-'));
  try {
    const svc = fakeService(dir);
    writeFileSync(svc.conf, 'port: 1\n');
    await sh(svc.restart);
    const { ctx, sent } = localCtx();
    const act = replace({ name: 'svc', files: [{ dest: svc.conf, content: 'port: 2\n', mode: '0644' }], service: { restart: svc.restart, ready: svc.ready, timeout: 5 } });
    const r = await act.run(ctx);
    assert.is(r.changed, true);
    assert.match(r.msg!, /content changed; svc restarted and passes/);
    assert.is(readFileSync(svc.conf, 'utf8'), 'port: 2\n');
    assert.is(readFileSync(svc.running, 'utf8'), 'port: 2\n');
    assert.not.ok(existsSync(`${svc.conf}.phx-prev`));
    assert.match(r.diff![0]!.text, /-port: 1\n\+port: 2/);
    // Order: probes first, then write+validate a temp file, keep the previous, rename, restart.
    const changes = sent.filter((s) => !s.readOnly).map((s) => s.cmd);
    assert.match(changes[0]!, /mktemp .*\.phx-/);
    assert.match(changes[1]!, /ln -f .*svc\.conf.*svc\.conf\.phx-prev.* && mv -f /);
    assert.ok(changes[2]!.includes(svc.restart));
    assert.match(changes[3]!, /rm -f -- .*\.phx-prev/);
    const again = localCtx();
    const r2 = await act.run(again.ctx);
    assert.is(r2.changed, false);
    assert.equal(again.sent.filter((s) => !s.readOnly), [], 'nothing but probes when nothing changes');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('real shell: a config the service refuses at start is rolled back: previous bytes back, service restarted on them, its own error in the failure', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'phx-replace-'));
  try {
    const svc = fakeService(dir);
    const other = join(dir, 'extra.conf');
    writeFileSync(svc.conf, 'port: 1\n');
    await sh(`chmod 0640 ${svc.conf}`);
    await sh(svc.restart);
    const before = sha(svc.conf);
    const { ctx } = localCtx();
    // Valid to the validator (it only checks it is not empty), refused by the service at start.
    const act = replace({
      name: 'svc',
      files: [
        { dest: svc.conf, content: 'port: 22 # BAD\n', validate: 'test -s %s' },
        { dest: other, content: 'new file\n' },
      ],
      service: { restart: svc.restart, ready: svc.ready, timeout: 2 },
    });
    const e = await act.run(ctx).then(
      () => undefined,
      (x: unknown) => x as TaskError,
    );
    assert.ok(e instanceof TaskError, 'the task fails');
    assert.match(e!.message, /svc on h1 did not come back after .*svc\.conf, .*extra\.conf changed: .*address already in use/);
    assert.match(e!.message, /rolled back: the previous .*svc\.conf is back, the new .*extra\.conf is removed; svc passes .* again/);
    assert.is(sha(svc.conf), before, 'the previous bytes are back');
    assert.is((await sh(`stat -c %a ${svc.conf}`)).stdout.trim(), '640', 'with its mode');
    assert.not.ok(existsSync(other), 'a file that did not exist before is removed');
    assert.not.ok(existsSync(`${svc.conf}.phx-prev`));
    assert.is(readFileSync(svc.running, 'utf8'), 'port: 1\n', 'the service runs on the previous config again');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('real shell: a file that fails validate is never put in place, the service is not touched', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'phx-replace-'));
  try {
    const svc = fakeService(dir);
    writeFileSync(svc.conf, 'port: 1\n');
    const before = sha(svc.conf);
    const { ctx, sent } = localCtx();
    const act = replace({ files: [{ dest: svc.conf, content: 'port: x\n', validate: `grep -q 'port: [0-9]' %s || { echo "svc: port is not a number" >&2; exit 4; }` }], service: { restart: svc.restart, timeout: 2 } });
    await act.run(ctx).then(
      () => assert.unreachable('must fail'),
      (e: Error) => assert.match(e.message, /h1: the new .*svc\.conf failed validation \(exit status 4\): svc: port is not a number; nothing was replaced/),
    );
    assert.is(sha(svc.conf), before);
    assert.not.ok(sent.some((s) => s.cmd.includes(svc.restart)), 'no restart');
    assert.is((await sh(`ls -A ${dir}`)).stdout.trim(), 'svc.conf', 'no temp file left');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('check mode: the diff and "would restart", only read-only commands sent, the file untouched', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'phx-replace-'));
  try {
    const svc = fakeService(dir);
    writeFileSync(svc.conf, 'port: 1\n');
    const before = sha(svc.conf);
    const { ctx, sent } = localCtx(true);
    const r = await replace({ name: 'svc', files: [{ dest: svc.conf, content: 'port: 2\n' }], service: { restart: svc.restart, timeout: 2 } }).run(ctx);
    assert.is(r.changed, true);
    assert.match(r.msg!, /would restart svc/);
    assert.match(r.diff![0]!.text, /\+port: 2/);
    assert.ok(sent.length > 0 && sent.every((s) => s.readOnly), 'only probes');
    assert.is(sha(svc.conf), before);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A recording host that answers like a systemd machine whose unit fails on the new file. */
function systemdHost(opts: { active: boolean; failFirst: boolean; existing?: string }) {
  const sent: Sent[] = [];
  let restarts = 0;
  const ok = (stdout = ''): ExecResult => ({ code: 0, stdout, stderr: '', stdoutBuffer: Buffer.from(stdout) });
  const answer = (cmd: string): ExecResult => {
    if (cmd.startsWith('p=')) {
      if (opts.existing === undefined) return ok('absent\nparent\n');
      const h = createHash('sha256').update(opts.existing).digest('hex');
      return ok(`st:regular file|644|root|root|${opts.existing.length}|0|0\nsha:${h}\nparent\n`);
    }
    if (cmd.startsWith('cat -- ')) return ok(opts.existing);
    if (cmd.startsWith('systemctl show -p LoadState')) return ok(`LoadState=loaded\nActiveState=${opts.active ? 'active' : 'inactive'}\n`);
    if (cmd.includes('mktemp')) return ok('phx-temp /etc/app/.phx-abc123\n');
    if (cmd.includes('phx-since')) {
      restarts++;
      if (opts.failFirst && restarts === 1) return { code: 2, stdout: 'phx-since 1700000000\n', stderr: 'phx: app is failed (failed)\n', stdoutBuffer: Buffer.from('') };
      return ok('phx-since 1700000001\n');
    }
    if (cmd.startsWith('journalctl _SYSTEMD_UNIT=')) return ok('app starting\napp: fatal: listen tcp :22: bind: address already in use\n');
    return ok();
  };
  const exec = async (cmd: string, o: ExecOptions = {}, readOnly = false, check = false) => {
    sent.push({ cmd, readOnly: readOnly || !!o.readOnly, stdin: o.stdin instanceof Secret ? '[secret]' : o.stdin?.toString() });
    if (check && !readOnly && !o.readOnly) throw new Error(`check mode: refused ${cmd}`);
    return answer(cmd);
  };
  const ctxFor = (check: boolean) =>
    ({
      host: { name: 'h1', address: '127.0.0.1', vars: {} },
      check,
      diff: true,
      pendingChanges: false,
      probe: (cmd: string, o?: ExecOptions) => exec(cmd, o, true, check),
      run: (cmd: string, o?: ExecOptions) => exec(cmd, o, false, check),
      change: async (plan: ActionResult, apply: () => Promise<ActionResult | void>) => (check ? plan : ((await apply()) ?? plan)),
      request: async () => ({ status: 200, data: '' }),
    }) as unknown as ActionContext;
  return { sent, ctxFor };
}

test('systemd: order of operations on a failed restart; the journal is the error; restored, restarted, reported rolled back', async () => {
  const h = systemdHost({ active: true, failFirst: true, existing: 'port: 9000\n' });
  const act = replace({ files: [{ dest: '/etc/app/app.conf', content: 'port: 22\n' }], service: { unit: 'app', ready: { url: 'https://localhost:9000/health', ca: '/etc/app/root.crt' }, timeout: 5 } });
  const e = await act.run(h.ctxFor(false)).then(
    () => undefined,
    (x: TaskError) => x,
  );
  assert.ok(e);
  assert.match(e!.message, /^app on h1 did not come back after \/etc\/app\/app\.conf changed: app: fatal: listen tcp :22: bind: address already in use; app is failed \(failed\); rolled back: the previous \/etc\/app\/app\.conf is back; app answers https:\/\/localhost:9000\/health again$/);
  assert.match(e!.detail.stderr!, /address already in use/);
  const kinds = h.sent.map((s) =>
    s.cmd.startsWith('p=') ? 'stat' : s.cmd.startsWith('cat') ? 'read' : s.cmd.startsWith('systemctl show') ? 'state' : s.cmd.includes('mktemp') ? 'write temp' : s.cmd.includes('ln -f') ? 'keep previous + rename' : s.cmd.includes('phx-since') ? 'restart + wait' : s.cmd.startsWith('journalctl') ? 'journal' : s.cmd.includes(".phx-prev' ] || mv") ? 'restore' : s.cmd,
  );
  assert.equal(kinds, ['stat', 'read', 'state', 'write temp', 'keep previous + rename', 'restart + wait', 'journal', 'restore', 'restart + wait']);
  const restart = h.sent.find((s) => s.cmd.includes('phx-since'))!.cmd;
  assert.match(restart, /systemctl reset-failed 'app'[\s\S]*systemctl restart 'app'/);
  assert.match(restart, /--cacert '\/etc\/app\/root\.crt' 'https:\/\/localhost:9000\/health'/, 'TLS verified with the given CA');
});

test('systemd: a unit that is not running is not started (a later task starts it); the previous copy is dropped', async () => {
  const h = systemdHost({ active: false, failFirst: false, existing: 'a\n' });
  const r = await replace({ files: [{ dest: '/etc/app/app.conf', content: 'b\n' }], service: { unit: 'app' } }).run(h.ctxFor(false));
  assert.match(r.msg!, /app is not running: not started/);
  assert.not.ok(h.sent.some((s) => s.cmd.includes('phx-since')));
});

test("systemd, whenStopped 'start': a stopped unit is started on the new file; when it fails, the file goes back and the unit is stopped again, as it was", async () => {
  const h = systemdHost({ active: false, failFirst: true, existing: 'a\n' });
  const e = await replace({ files: [{ dest: '/etc/app/app.conf', content: 'b\n' }], service: { unit: 'app', whenStopped: 'start' } })
    .run(h.ctxFor(false))
    .then(
      () => undefined,
      (x: TaskError) => x,
    );
  assert.match(e!.message, /rolled back: the previous \/etc\/app\/app\.conf is back; app is stopped again, as it was$/);
  assert.match(h.sent.find((s) => s.cmd.includes('phx-since'))!.cmd, /systemctl start 'app'/);
  assert.match(h.sent[h.sent.length - 1]!.cmd, /^systemctl stop 'app'$/);
});

test('check mode on systemd: probes only, "would restart"; a Secret is in no diff, message or command line', async () => {
  const h = systemdHost({ active: true, failFirst: false, existing: 'old\n' });
  const pw = secret('hunter2-very-secret');
  const r = await replace({ files: [{ dest: '/etc/app/pw', content: pw }], service: { unit: 'app' } }).run(h.ctxFor(true));
  assert.is(r.changed, true);
  assert.match(r.msg!, /would restart app/);
  assert.ok(h.sent.every((s) => s.readOnly), 'only read-only commands in check mode');
  assert.not.match(JSON.stringify(r), /hunter2/);
  // A real run: the secret goes on stdin only, as a Secret.
  const real = systemdHost({ active: true, failFirst: false, existing: 'old\n' });
  const rr = await replace({ files: [{ dest: '/etc/app/pw', content: pw }], service: { unit: 'app' } }).run(real.ctxFor(false));
  assert.not.match(JSON.stringify(rr), /hunter2/);
  assert.not.ok(real.sent.some((s) => s.cmd.includes('hunter2') || (s.stdin ?? '').includes('hunter2')));
  assert.match(real.sent.find((s) => s.cmd.includes('mktemp'))!.cmd, /chmod 00600/, 'a Secret is 0600 by default');
});

test('bad arguments fail before any host is touched, naming the file', () => {
  assert.throws(() => replace({ files: [{ dest: 'etc/x', content: 'a' }] }), /dest "etc\/x" must be an absolute path/);
  assert.throws(() => replace({ files: [{ dest: '/etc/x', content: 'a', mode: 'rwx' }] }), /replace \/etc\/x: mode "rwx" must be octal/);
  assert.throws(() => replace({ files: [{ dest: '/etc/x', content: 'a' }], service: {} }), /service needs a unit or a restart command/);
  assert.throws(() => replace({ files: [] }), /at least one file/);
});

test.run();
