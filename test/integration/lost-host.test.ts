// A host that freezes mid-run (issue 10, item 2): its sshd session processes are stopped with
// SIGSTOP while a task runs, so TCP stays up but nothing answers. With the inventory's
// keepalive bound (1 s x 2 probes), the host is "unreachable" with how long it was silent,
// exit 3, and the other host finishes its play.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { sessionPids, type SshdLab } from '../harness/sshd.ts';
import { copy, play, playbook, role, run, shell, task } from '../../runner/index.ts';
import { capture, hosts, inventoryFor, type TestVars } from './helpers.ts';
import { spawnSync } from 'node:child_process';

const L = suite('lost hosts');
let lab: SshdLab;
L.before(async () => {
  lab = await hosts(2);
});
L.after(async () => {
  await lab?.stop();
});

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
const running = (arg: string) => spawnSync('pgrep', ['-xf', `sleep ${arg}`], { encoding: 'utf8' }).stdout.trim() !== '';

const book = playbook<TestVars>('freeze', [
  play({
    hosts: 'test',
    roles: [
      role<TestVars>({
        name: 'f',
        tasks: [
          // host0 gets a long command to freeze in; host1 a short one.
          task({ name: 'work', do: ({ host }) => shell(host.name === 'host0' ? 'sleep 3041' : 'sleep 2') }),
          task({ name: 'after', do: ({ vars }) => copy({ dest: `${vars.root}/after`, content: 'x\n' }) }),
        ],
      }),
    ],
  }),
]);

L('a frozen host is unreachable after the keepalive bound, saying how long it was silent; the others finish', async () => {
  const inv = inventoryFor(lab);
  inv.groups = { test: { keepaliveInterval: 1, keepaliveCountMax: 2 } };
  const c = capture();
  const result = run(book, { inventory: inv, out: c.out });
  const end = Date.now() + 60_000;
  while (!running('3041') && Date.now() < end) await wait(100);
  assert.ok(running('3041'), 'the long command started on host0');
  const frozen = sessionPids(lab.hosts[0]!);
  for (const p of frozen) process.kill(p, 'SIGSTOP');
  try {
    const res = await result;
    assert.is(res.exitCode, 3, c.text());
    assert.is(res.recap.host0!.status, 'unreachable');
    assert.is(res.recap.host1!.status, 'ok');
    assert.ok(existsSync(join(lab.hosts[1]!.root, 'after')), 'host1 ran its next task');
    assert.not.ok(existsSync(join(lab.hosts[0]!.root, 'after')));
    const task = res.plays[0]!.hosts.host0!.tasks.find((t) => t.task === 'work')!;
    assert.is(task.status, 'unreachable');
    const m = /^host0: connection lost: no answer from phxtest@\[127\.0\.0\.1\]:\d+ for (\d+)s \(keepalive every 1s, 2 unanswered allowed\); the host may be frozen or the network down$/.exec(task.error!.message);
    assert.ok(m, task.error!.message);
    assert.ok(Number(m![1]) >= 2, `silent for ${m![1]}s: at least the 2 unanswered probes`);
    assert.match(c.text(), /unreachable\s+host0 \| f \| work\n\s+error: host0: connection lost/);
  } finally {
    for (const p of frozen) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
});

L('keepalive settings are validated like every inventory field', async () => {
  const inv = inventoryFor(lab);
  inv.hosts.host0!.keepaliveCountMax = 0;
  const err = await run(book, { inventory: inv, out: capture().out }).then(() => 'ran', (e: Error) => e.message);
  assert.match(err, 'host "host0": field "keepaliveCountMax": must be >= 1');
});

L.run();
