// file, copy, command and template where they used to differ from Ansible (issue 10, item 6),
// against a real sshd on 127.0.0.1: each case is run twice (the second run must change
// nothing) and, where it matters, in check mode first (which must change nothing).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { SshdLab } from '../harness/sshd.ts';
import { copy, file, output, play, playbook, role, run, shell, task, template, type CommandData, type RunResult, type TaskOptions } from '../../runner/index.ts';
import { capture, hosts, inventoryFor, snapshot, type TestVars } from './helpers.ts';

const M = suite('modules compared with Ansible');
let lab: SshdLab;
let root = '';
let n = 0;
const local = mkdtempSync(join(tmpdir(), 'phx-ansible-'));

M.before(async () => {
  lab = await hosts(1);
  root = lab.hosts[0]!.root;
});
M.after(async () => {
  await lab?.stop();
  rmSync(local, { recursive: true, force: true });
});

/** A fresh directory on the host for one case. */
function area(): string {
  const d = join(root, `case${++n}`);
  mkdirSync(d);
  return d;
}

const book = (...tasks: TaskOptions<TestVars>[]) => playbook<TestVars>('b', [play({ hosts: 'host0', roles: [role<TestVars>({ name: 'r', tasks: tasks.map((t) => task(t)) })] })]);
const go = (pb: ReturnType<typeof book>, check = false) => run(pb, { inventory: inventoryFor(lab), check, out: capture().out });
const err = (r: RunResult) => r.plays[0]!.hosts.host0!.tasks.find((t) => t.status === 'failed')?.error;
/** A run that succeeds and changes nothing (a second run). */
async function settled(pb: ReturnType<typeof book>) {
  const r = await go(pb);
  assert.equal([r.exitCode, r.recap.host0!.changed, r.recap.host0!.failed], [0, 0, 0], JSON.stringify(err(r)));
}
const statuses = (r: RunResult) => r.plays[0]!.hosts.host0!.tasks.map((t) => t.status);

M('a link never silently replaces a regular file; force: true does, and a second run is ok', async () => {
  const d = area();
  writeFileSync(`${d}/target`, 'target\n');
  writeFileSync(`${d}/p`, 'precious\n');
  const pb = book({ name: 'link', do: file({ path: `${d}/p`, src: `${d}/target`, state: 'link' }) });
  const before = snapshot(d);
  const check = await go(pb, true);
  assert.is(check.exitCode, 2, 'check mode must fail where the real run would');
  const real = await go(pb);
  assert.is(real.exitCode, 2);
  assert.match(err(real)!.message, /exists as a regular file; refusing to replace it with a link \(force: true/);
  assert.equal(snapshot(d), before, 'the file was touched');
  assert.is(readFileSync(`${d}/p`, 'utf8'), 'precious\n');

  const forced = book({ name: 'link', do: file({ path: `${d}/p`, src: `${d}/target`, state: 'link', force: true }) });
  assert.is((await go(forced)).recap.host0!.changed, 1);
  assert.is(readlinkSync(`${d}/p`), `${d}/target`);
  await settled(forced);

  // A non-empty directory is refused even with force; an empty one is replaced with force.
  mkdirSync(`${d}/full`);
  writeFileSync(`${d}/full/x`, 'x');
  const full = await go(book({ name: 'link', do: file({ path: `${d}/full`, src: `${d}/target`, state: 'link', force: true }) }));
  assert.is(full.exitCode, 2);
  assert.ok(existsSync(`${d}/full/x`));
  mkdirSync(`${d}/empty`);
  const empty = book({ name: 'link', do: file({ path: `${d}/empty`, src: `${d}/target`, state: 'link', force: true }) });
  assert.is((await go(empty)).exitCode, 0);
  assert.ok(lstatSync(`${d}/empty`).isSymbolicLink());
});

M('absent on "link/" refuses and keeps the target\'s contents; "link" removes only the link', async () => {
  const d = area();
  mkdirSync(`${d}/real`);
  writeFileSync(`${d}/real/data`, 'keep me\n');
  symlinkSync(`${d}/real`, `${d}/l`);
  const before = snapshot(d);
  const slash = book({ name: 'rm', do: file({ path: `${d}/l/`, state: 'absent' }) });
  assert.is((await go(slash, true)).exitCode, 2);
  const r = await go(slash);
  assert.is(r.exitCode, 2);
  assert.match(err(r)!.message, /is a symlink .* trailing slash/);
  assert.equal(snapshot(d), before, 'something was removed');

  const bare = book({ name: 'rm', do: file({ path: `${d}/l`, state: 'absent' }) });
  assert.is((await go(bare)).recap.host0!.changed, 1);
  assert.not.ok(existsSync(`${d}/l`));
  assert.is(readFileSync(`${d}/real/data`, 'utf8'), 'keep me\n');
  await settled(bare);
  // A trailing slash on a real directory is that directory.
  const dir = book({ name: 'rm', do: file({ path: `${d}/real/`, state: 'absent' }) });
  assert.is((await go(dir)).recap.host0!.changed, 1);
  assert.not.ok(existsSync(`${d}/real`));
});

M('state file/directory with a mode on a symlink manage the target (as chmod does) and settle', async () => {
  const d = area();
  writeFileSync(`${d}/t`, 't\n');
  chmodSync(`${d}/t`, 0o644);
  symlinkSync(`${d}/t`, `${d}/l`);
  mkdirSync(`${d}/dir`, { mode: 0o755 });
  symlinkSync('dir', `${d}/dl`);
  const pb = book(
    { name: 'file via link', do: file({ path: `${d}/l`, state: 'file', mode: '0600' }) },
    { name: 'dir via link', do: file({ path: `${d}/dl`, state: 'directory', mode: '0700' }) },
  );
  const before = snapshot(d);
  assert.is((await go(pb, true)).recap.host0!.changed, 2);
  assert.equal(snapshot(d), before);
  assert.is((await go(pb)).recap.host0!.changed, 2);
  assert.is(statSync(`${d}/t`).mode & 0o7777, 0o600);
  assert.is(statSync(`${d}/dir`).mode & 0o7777, 0o700);
  assert.ok(lstatSync(`${d}/l`).isSymbolicLink(), 'the link was replaced');
  const second = await go(pb);
  assert.equal([second.exitCode, second.recap.host0!.changed], [0, 0]);
  // A dangling link is an error naming it, not a created file.
  symlinkSync(`${d}/missing`, `${d}/dangling`);
  const dang = await go(book({ name: 'dangling', do: file({ path: `${d}/dangling`, state: 'file', mode: '0600' }) }));
  assert.match(err(dang)!.message, /symlink \(-> .*missing\) to something that does not exist/);
});

M('symlinks on the way: copy through a symlinked directory writes inside its target; touch on a link to a file follows it', async () => {
  const d = area();
  mkdirSync(`${d}/real`);
  symlinkSync(`${d}/real`, `${d}/via`);
  writeFileSync(`${d}/f`, 'f\n');
  chmodSync(`${d}/f`, 0o644);
  symlinkSync(`${d}/f`, `${d}/fl`);
  const pb = book(
    { name: 'through link', do: copy({ dest: `${d}/via/conf`, content: 'c\n', mode: '0640' }) },
    { name: 'touch link', do: file({ path: `${d}/fl`, state: 'touch', mode: '0600' }) },
  );
  assert.equal([(await go(pb)).recap.host0!.changed], [2]);
  assert.is(readFileSync(`${d}/real/conf`, 'utf8'), 'c\n');
  assert.is(statSync(`${d}/f`).mode & 0o7777, 0o600);
  assert.ok(lstatSync(`${d}/fl`).isSymbolicLink());
  assert.ok(lstatSync(`${d}/via`).isSymbolicLink());
  const again = await go(pb);
  assert.equal([again.exitCode, again.recap.host0!.changed, again.recap.host0!.ok], [0, 0, 2]);
  const rm = await go(book({ name: 'absent link', do: file({ path: `${d}/via`, state: 'absent' }) }));
  assert.equal([rm.exitCode, rm.recap.host0!.changed], [0, 1]);
  assert.not.ok(existsSync(`${d}/via`));
  assert.ok(existsSync(`${d}/real/conf`), 'removing the link removed its target');
});

M('numeric owner and group compare with the ids (file and copy settle)', async () => {
  const d = area();
  writeFileSync(`${d}/f`, 'f\n');
  const pb = book(
    { name: 'file ids', do: file({ path: `${d}/f`, state: 'file', owner: '65534', group: '65534' }) },
    { name: 'copy ids', do: copy({ dest: `${d}/c`, content: 'c\n', owner: '65534', group: '65534', mode: '0640' }) },
    { name: 'dir by name', do: file({ path: `${d}/n`, state: 'directory', owner: 'nobody' }) },
  );
  assert.is((await go(pb)).recap.host0!.changed, 3);
  for (const f of ['f', 'c']) assert.equal([statSync(`${d}/${f}`).uid, statSync(`${d}/${f}`).gid], [65534, 65534], f);
  assert.is(statSync(`${d}/n`).uid, 65534);
  const second = await go(pb);
  assert.equal([second.exitCode, second.recap.host0!.changed], [0, 0]);
  // The same ids named by name are no change either, and by id after a name.
  const byName = book({ name: 'file names', do: file({ path: `${d}/n`, state: 'directory', owner: '65534' }) });
  await settled(byName);
});

M('mode 0755 on a setgid directory clears setgid (as Ansible), and settles', async () => {
  const d = area();
  mkdirSync(`${d}/sg`);
  chmodSync(`${d}/sg`, 0o2755);
  assert.is(statSync(`${d}/sg`).mode & 0o7777, 0o2755);
  const pb = book({ name: 'plain dir', do: file({ path: `${d}/sg`, state: 'directory', mode: '0755' }) });
  assert.is((await go(pb)).recap.host0!.changed, 1);
  assert.is(statSync(`${d}/sg`).mode & 0o7777, 0o755);
  await settled(pb);
  const set = book({ name: 'setgid dir', do: file({ path: `${d}/sg`, state: 'directory', mode: '2775' }) });
  assert.is((await go(set)).recap.host0!.changed, 1);
  assert.is(statSync(`${d}/sg`).mode & 0o7777, 0o2775);
  await settled(set);
});

M('state directory creates missing parents with the same mode and owner (as Ansible)', async () => {
  const d = area();
  const pb = book({ name: 'deep', do: file({ path: `${d}/a/b/c`, state: 'directory', mode: '0750', owner: 'nobody' }) });
  assert.is((await go(pb, true)).recap.host0!.changed, 1);
  assert.not.ok(existsSync(`${d}/a`));
  assert.is((await go(pb)).recap.host0!.changed, 1);
  for (const p of ['a', 'a/b', 'a/b/c']) {
    assert.is(statSync(`${d}/${p}`).mode & 0o7777, 0o750, p);
    assert.is(statSync(`${d}/${p}`).uid, 65534, p);
  }
  await settled(pb);
});

M('mode, owner or group on a link are refused, not silently ignored', async () => {
  const d = area();
  const r = await go(book({ name: 'l', do: file({ path: `${d}/l`, state: 'link', src: '/etc/hostname', mode: '0600' }) }));
  assert.is(r.exitCode, 2);
  assert.match(err(r)!.message, /not applied to a link/);
  assert.not.ok(existsSync(`${d}/l`));
});

M('command: relative creates/removes are relative to chdir, and accept globs', async () => {
  const d = area();
  const pb = book({ name: 'once', do: shell('touch done && echo ran >> log', { chdir: d, creates: 'done' }) });
  assert.is((await go(pb)).recap.host0!.changed, 1);
  const second = await go(pb);
  assert.equal([second.recap.host0!.changed, second.recap.host0!.ok], [0, 1]);
  assert.is(readFileSync(`${d}/log`, 'utf8'), 'ran\n');

  writeFileSync(`${d}/out-1.log`, '');
  const glob = book(
    { name: 'glob creates', do: shell('echo x >> glob-ran', { chdir: d, creates: 'out-*.log' }) },
    { name: 'glob removes', do: shell('echo y >> removes-ran', { chdir: d, removes: `${d}/nothing-*.tmp` }) },
    { name: 'glob removes matches', do: shell(`echo z >> ${d}/removes-matched`, { removes: `${d}/out-?.log` }) },
  );
  const g = await go(glob);
  assert.equal(statuses(g), ['ok', 'ok', 'changed']);
  assert.not.ok(existsSync(`${d}/glob-ran`));
  assert.not.ok(existsSync(`${d}/removes-ran`));
  assert.ok(existsSync(`${d}/removes-matched`));
  // A name with a space is one path, not two.
  writeFileSync(`${d}/a b`, '');
  const spaced = await go(book({ name: 'spaced', do: shell('echo s >> spaced-ran', { chdir: d, creates: 'a b' }) }));
  assert.equal(statuses(spaced), ['ok']);
  // A missing chdir is a clear error, not a silent run elsewhere.
  const nodir = await go(book({ name: 'nodir', do: shell('true', { chdir: `${d}/nope`, creates: 'x' }) }));
  assert.is(nodir.exitCode, 2);
  assert.match(err(nodir)!.message, /chdir .*nope.* does not exist/);
});

M('copy from a directory src is a clear error naming it', async () => {
  const d = area();
  const r = await go(book({ name: 'dir src', do: copy({ dest: `${d}/x`, src: local }) }));
  assert.is(r.exitCode, 2);
  const m = err(r)!.message;
  assert.match(m, new RegExp(`copy ${d}/x: source ${local} is a directory`));
  assert.not.match(m, /EISDIR/);
});

M('copy: a relative src is found in the role\'s files/ folder (as Ansible); dest ending in "/" is a clear error', async () => {
  const d = area();
  const roleDir = join(local, 'roles', 'site');
  mkdirSync(join(roleDir, 'files'), { recursive: true });
  writeFileSync(join(roleDir, 'files', 'banner.txt'), 'from files/\n');
  writeFileSync(join(roleDir, 'index.ts'), '');
  const r = role<TestVars>({
    name: 'site',
    url: pathToFileURL(join(roleDir, 'index.ts')).href,
    tasks: [task({ name: 'banner', do: copy({ dest: `${d}/banner`, src: 'banner.txt' }) })],
  });
  const res = await run(playbook<TestVars>('f', [play({ hosts: 'host0', roles: [r] })]), { inventory: inventoryFor(lab), out: capture().out });
  assert.is(res.exitCode, 0, JSON.stringify(err(res)));
  assert.is(readFileSync(`${d}/banner`, 'utf8'), 'from files/\n');
  const slash = await go(book({ name: 'slash', do: copy({ dest: `${d}/sub/`, content: 'x' }) }));
  assert.match(err(slash)!.message, /dest ends with "\/"/);
  assert.not.ok(existsSync(`${d}/sub`));
});

M('copy force: false writes only when dest is missing', async () => {
  const d = area();
  writeFileSync(`${d}/keep`, 'local edit\n');
  const pb = book(
    { name: 'seed', do: copy({ dest: `${d}/keep`, content: 'default\n', force: false }) },
    { name: 'new', do: copy({ dest: `${d}/new`, content: 'default\n', force: false }) },
  );
  assert.equal(statuses(await go(pb)), ['ok', 'changed']);
  assert.is(readFileSync(`${d}/keep`, 'utf8'), 'local edit\n');
  assert.is(readFileSync(`${d}/new`, 'utf8'), 'default\n');
  await settled(pb);
});

M('check mode: a registered command result always has data (stdout, stderr, code)', async () => {
  const d = area();
  const seen: unknown[] = [];
  const rs = [output<CommandData>('r1'), output<CommandData>('r2'), output<CommandData>('r3')] as const;
  const pb = book(
    { name: 'pending change', do: file({ path: `${d}/made`, state: 'directory' }) },
    { name: 'read it', register: rs[0], do: shell(`cat ${d}/made/value`, { readOnly: true }) },
    { name: 'would run', register: rs[1], do: shell('echo hi') },
    { name: 'guarded', register: rs[2], do: shell('echo hi', { creates: d }) },
    {
      name: 'use them',
      uses: [...rs],
      do: ({ get }) => {
        for (const r of rs) seen.push(get(r).stdout);
        return shell('true', { readOnly: true });
      },
    },
  );
  const r = await go(pb, true);
  assert.is(r.exitCode, 0, JSON.stringify(err(r)));
  assert.equal(seen, ['', '', '']);
  assert.equal(statuses(r), ['changed', 'unknown', 'changed', 'ok', 'ok']);
});

M('template validation failure names the destination and the template, shows the validator output', async () => {
  const d = area();
  writeFileSync(`${d}/site.conf`, 'good\n');
  const tpl = join(local, 'site.conf.hbs');
  writeFileSync(tpl, 'listen {{port}};\n');
  // Like the nginx role: several statements, the checker writing to stderr.
  const validate = 'f=%s; echo "bad directive in $f:1" >&2; echo "test failed" >&2; exit 1';
  const r = await go(book({ name: 'site', do: template({ src: tpl, dest: `${d}/site.conf`, vars: { port: 'x' }, validate }) }));
  assert.is(r.exitCode, 2);
  const e = err(r)!;
  assert.match(e.message, new RegExp(`${d}/site.conf`));
  assert.match(e.message, /site\.conf\.hbs/);
  assert.match(e.stderr!, new RegExp(`bad directive in ${d}/site.conf \\(new content\\):1`));
  assert.match(e.stderr!, /test failed/);
  assert.not.match(`${e.message}\n${e.stderr}`, /\.phx-/);
  assert.not.match(e.stderr!, /validation failed:\s*$/);
  assert.is(readFileSync(`${d}/site.conf`, 'utf8'), 'good\n');
  // A validator that fails silently still says so.
  const quiet = await go(book({ name: 'site', do: template({ src: tpl, dest: `${d}/site.conf`, vars: { port: 'x' }, validate: 'false %s' }) }));
  assert.match(err(quiet)!.message, /exited 1 without output/);
});

M.run();
