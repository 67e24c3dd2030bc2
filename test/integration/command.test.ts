// Issue 17 item 7: command() runs a program without a shell (an argv, or a string split like
// Ansible's command), against a real sshd on loopback; shell() keeps the shell.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import type { SshdLab } from '../harness/sshd.ts';
import { command, play, playbook, role, run, shell, task } from '../../runner/index.ts';
import { capture, hosts, inventoryFor, type TestVars } from './helpers.ts';

const C = suite('command without a shell');
let lab: SshdLab;
C.before(async () => {
  lab = await hosts(1);
});
C.after(async () => {
  await lab?.stop();
});

async function go(tasks: ReturnType<typeof task<TestVars>>[]) {
  const pb = playbook<TestVars>('cmd', [play({ hosts: 'host0', roles: [role<TestVars>({ name: 'cmd', tasks })] })]);
  const r = await run(pb, { inventory: inventoryFor(lab), out: capture().out });
  return { code: r.exitCode, tasks: r.plays[0]!.hosts.host0!.tasks };
}

C("command(['printf', '%s', 'a b;c']) prints a b;c: each argument reaches the program as written", async () => {
  const root = lab.hosts[0]!.root;
  const r = await go([
    task({ name: 'argv', do: command(['printf', '%s', 'a b;c']) }),
    task({ name: 'string', do: command(`printf "%s|" $HOME "a b" '*' ; touch ${root}/injected`) }),
    task({ name: 'quotes', do: command(['printf', '%s', `it's "quoted" $(id) \`id\` \\ \n`]) }),
    task({ name: 'shell keeps the shell', do: shell(`printf '%s' "$((1+2))" | tr 3 4`) }),
  ]);
  assert.is(r.code, 0, JSON.stringify(r.tasks));
  assert.equal(r.tasks.map((t) => [t.module, t.msg]), [
    ['command', 'a b;c'],
    ['command', `$HOME|a b|*|;|touch|${root}/injected|`],
    ['command', `it's "quoted" $(id) \`id\` \\`],
    ['shell', '4'],
  ]);
  assert.not.ok(existsSync(`${root}/injected`), 'a ; in a command() string ran a second command');
});

C('command() keeps the guards and fails like the program does', async () => {
  const root = lab.hosts[0]!.root;
  const r = await go([
    task({ name: 'make', do: command(['touch', 'made file'], { chdir: root, creates: 'made file' }) }),
    task({ name: 'again', do: command(['touch', 'made file'], { chdir: root, creates: 'made file' }) }),
    task({ name: 'missing program', do: command('no-such-program-phx --flag') }),
  ]);
  assert.is(r.code, 2);
  assert.ok(existsSync(`${root}/made file`));
  assert.equal(r.tasks.map((t) => t.status), ['changed', 'ok', 'failed']);
  assert.match(r.tasks[2]!.error!.message, /exited with status 127/);
});

C.run();
