// Plays that overlap (issue 18, item 2): `after` declares what a play waits for; the engine runs
// the play graph. Ordering is asserted on recorded start/end events, never on timing: a task that
// must overlap another waits on a gate only that other task opens (a deadline guards a hang).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Engine } from '../../runner/engine.ts';
import { gate, idle, type Gate } from '../harness/engine-fakes.ts';
import { PlainRunner } from '../../runner/report.ts';
import { recap } from '../../runner/report.ts';
import { handler, play, playbook, resolveInventory, resolvePlan, role, run, task, SelectionError, TaskError, type Action, type Play, type Playbook } from '../../runner/index.ts';

const inv = {
  hosts: {
    a: { address: '10.0.0.1', groups: ['left'] },
    b: { address: '10.0.0.2', groups: ['right'] },
    c: { address: '10.0.0.3', groups: ['right'] },
  },
};



/** Waits for a gate, failing (not hanging) when nothing opens it: that is the bug under test. */
async function through(g: Gate | undefined, what: string) {
  if (!g) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([g.promise, new Promise((_, rej) => (timer = setTimeout(() => rej(new TaskError(`never opened: ${what}`)), 3000)))]).finally(() => clearTimeout(timer));
}

/** An action that records "start <play> <host>" / "end <play> <host>", waiting on a gate between. */
function step(events: string[], label: string, opts: { wait?: Gate; opens?: Gate; fail?: boolean; changed?: boolean } = {}): Action {
  return {
    module: 'step',
    summary: label,
    async run(ctx) {
      events.push(`start ${label} ${ctx.host.name}`);
      opts.opens?.open();
      await through(opts.wait, `${label} on ${ctx.host.name}`);
      events.push(`end ${label} ${ctx.host.name}`);
      if (opts.fail) throw new TaskError(`${label} failed on purpose`);
      return { changed: opts.changed ?? false };
    },
  };
}

function playOf(events: string[], name: string, hosts: string, after: string[] | undefined, o: Parameters<typeof step>[2] = {}): Play {
  const r = role({ name: `r-${name}`, tasks: [task({ name: `t-${name}`, do: step(events, name, o) })] });
  return play({ name, hosts, roles: [r], ...(after !== undefined ? { after } : {}) });
}

async function runPb(pb: Playbook<any>, sel = {}, opts: { forks?: number; onStart?: (e: Engine) => void } = {}) {
  const resolved = resolveInventory(inv);
  const engine = new Engine({ check: false, diff: false, forks: opts.forks ?? 10, knownHosts: '/dev/null', acceptNewHostKeys: false, hosts: resolved.hosts, open: async () => idle });
  let text = '';
  const runner = new PlainRunner({ write: (s) => void (text += s) }, { diff: false, color: false });
  opts.onStart?.(engine);
  try {
    const r = await engine.runPlan(resolvePlan(pb, resolved, sel), runner);
    return { ...r, text, recap: recap(r.plays) };
  } finally {
    await engine.close();
  }
}

const at = (events: string[], e: string) => {
  const i = events.indexOf(e);
  assert.ok(i >= 0, `no event "${e}" in ${JSON.stringify(events)}`);
  return i;
};

test('without after: strictly in order, as Ansible (each play ends on all its hosts before the next starts)', async () => {
  const ev: string[] = [];
  const pb = playbook('seq', [playOf(ev, 'one', 'left', undefined), playOf(ev, 'two', 'right', undefined), playOf(ev, 'three', 'all', undefined)]);
  const r = await runPb(pb);
  assert.equal(ev, [
    'start one a', 'end one a',
    // b and c run the play side by side (hosts of a play run concurrently), then the next play.
    'start two b', 'start two c', 'end two b', 'end two c',
    'start three a', 'start three b', 'start three c', 'end three a', 'end three b', 'end three c',
  ]);
  assert.equal(r.notStarted, []);
  // Sequential output is unchanged: no play name on task lines, no after, no PLAY END.
  assert.not.match(r.text, '  [one]');
  assert.not.match(r.text, 'PLAY END');
  assert.match(r.text, 'PLAY [two] b, c\nok          b | r-two | t-two\n');
  assert.not.ok(r.plays[0]!.after, 'a sequential plan records no after');
});

test('after: []: plays on different hosts overlap (the second starts before the first ends)', async () => {
  const ev: string[] = [];
  const bStarted = gate();
  // "one" ends only once "two" has started: without overlap this never happens.
  const pb = playbook('overlap', [playOf(ev, 'one', 'left', [], { wait: bStarted }), playOf(ev, 'two', 'right', [], { opens: bStarted })]);
  const r = await runPb(pb);
  assert.ok(at(ev, 'start two b') < at(ev, 'end one a'), JSON.stringify(ev));
  assert.equal(Object.values(r.recap).map((c) => c.status), ['ok', 'ok', 'ok']);
  assert.equal(r.plays.map((p) => [p.play, p.after]), [['one', []], ['two', []]]);
  // Interleaved plain lines carry their play.
  assert.match(r.text, 'ok          a | r-one | t-one  [one]\n');
  assert.match(r.text, 'ok          b | r-two | t-two  [two]\n');
  assert.match(r.text, 'PLAY END [one]');
});

test('a play waits until what it names has ended on all of its hosts, not only on its own', async () => {
  const ev: string[] = [];
  const g = gate();
  const pb = playbook('wait', [
    playOf(ev, 'ca', 'left', []),
    // On b and c; b waits for "slow" on c too, so b must not start "uses" before c ends "slow".
    playOf(ev, 'slow', 'right', ['ca'], { wait: g }),
    playOf(ev, 'free', 'left', ['ca'], { opens: g }),
    playOf(ev, 'uses', 'right', ['slow']),
  ]);
  await runPb(pb);
  assert.ok(at(ev, 'end ca a') < at(ev, 'start slow b'));
  assert.ok(at(ev, 'start free a') < at(ev, 'end slow b'), 'free overlapped slow');
  for (const h of ['b', 'c']) assert.ok(at(ev, `start uses ${h}`) > Math.max(at(ev, 'end slow b'), at(ev, 'end slow c')), `uses on ${h}: ${JSON.stringify(ev)}`);
});

test('a host runs one play at a time; among ready plays the one declared first goes first', async () => {
  const ev: string[] = [];
  const pb = playbook('host', [playOf(ev, 'p1', 'left', []), playOf(ev, 'p2', 'all', []), playOf(ev, 'p3', 'left', [])]);
  await runPb(pb);
  const onA = ev.filter((e) => e.endsWith(' a'));
  assert.equal(onA, ['start p1 a', 'end p1 a', 'start p2 a', 'end p2 a', 'start p3 a', 'end p3 a']);
  // b and c had nothing before p2: they started it while a was still busy with p1.
  assert.ok(at(ev, 'start p2 b') < at(ev, 'end p1 a'), JSON.stringify(ev));
});

test('--forks caps the hosts running at once across overlapping plays', async () => {
  const ev: string[] = [];
  let running = 0;
  let most = 0;
  const counted = (name: string, hosts: string): Play =>
    play({
      name,
      hosts,
      after: [],
      roles: [
        role({
          name: `r-${name}`,
          tasks: [
            task({
              name: 't',
              do: {
                module: 'count',
                summary: 'count',
                async run(ctx) {
                  most = Math.max(most, ++running);
                  ev.push(`${name} ${ctx.host.name}`);
                  await new Promise((r) => setImmediate(r));
                  running--;
                  return { changed: false };
                },
              },
            }),
          ],
        }),
      ],
    });
  await runPb(playbook('forks', [counted('x', 'left'), counted('y', 'right')]), {}, { forks: 1 });
  assert.is(most, 1);
  assert.is(ev.length, 3);
});

test('a failed host leaves the run: its dependents skip it, the other hosts go on; the recap is right', async () => {
  const ev: string[] = [];
  const pb = playbook('fail', [
    play({ name: 'base', hosts: 'all', after: [], roles: [role({ name: 'base', tasks: [task({ name: 'base', do: ({ host }) => step(ev, 'base', { fail: host.name === 'b' }) })] })] }),
    playOf(ev, 'next', 'right', ['base']),
  ]);
  const r = await runPb(pb);
  assert.not.ok(ev.includes('start next b'), 'next did not run on the host that failed');
  assert.ok(ev.includes('start next c'));
  assert.is(r.recap.b!.status, 'failed');
  assert.is(r.recap.b!.failed, 1);
  assert.is(r.recap.c!.status, 'ok');
  assert.is(r.recap.c!.ok, 2);
});

test('a host that fails in a play beside another is not run by that other play, which says why', async () => {
  const ev: string[] = [];
  const waiting = gate();
  const pb = playbook('beside', [
    // "breaks" fails on a only once "later" (which also wants a) has started on b: a is then
    // already in "later", waiting for "breaks" to let go of it.
    playOf(ev, 'breaks', 'left', [], { wait: waiting, fail: true }),
    playOf(ev, 'later', 'all', [], { opens: waiting }),
  ]);
  const r = await runPb(pb);
  assert.not.ok(ev.includes('start later a'));
  assert.ok(ev.includes('start later b'));
  assert.equal(r.plays.find((p) => p.play === 'later')!.hosts.a!.notRun, { play: 'breaks', status: 'failed' });
  assert.match(r.text, 'not run     a | (the host was failed earlier, in play "breaks")  [later]\n');
  assert.is(r.recap.a!.status, 'failed');
  assert.is(r.recap.a!.failed, 1);
});

test('handlers still run at the end of their play, on overlapping plays', async () => {
  const ev: string[] = [];
  const h = handler('note', step(ev, 'handler'));
  const pb = playbook('handlers', [
    play({ name: 'x', hosts: 'left', after: [], roles: [role({ name: 'x', tasks: [task({ name: 'x', notify: [h], do: step(ev, 'x', { changed: true }) })] })] }),
    playOf(ev, 'y', 'right', []),
  ]);
  const r = await runPb(pb);
  assert.ok(at(ev, 'end x a') < at(ev, 'start handler a'));
  assert.ok(r.plays[0]!.hosts.a!.tasks.some((t) => t.handler && t.task === 'note' && t.status === 'ok'));
});

test('Ctrl-C: no play starts after it; the plays that did not start are named', async () => {
  const ev: string[] = [];
  let engine!: Engine;
  const stop: Action = {
    module: 'stop',
    summary: 'stop',
    async run() {
      engine.interrupt();
      return { changed: false };
    },
  };
  const pb = playbook('int', [
    play({ name: 'first', hosts: 'left', after: [], roles: [role({ name: 'f', tasks: [task({ name: 'f', do: stop })] })] }),
    playOf(ev, 'second', 'right', ['first']),
    playOf(ev, 'third', 'right', []),
  ]);
  const r = await runPb(pb, {}, { onStart: (e) => (engine = e) });
  assert.not.ok(ev.includes('start second b'));
  assert.equal(r.notStarted, ['second']);
});

test('--tags/--limit: a play waits through the plays the selection left out', () => {
  const ev: string[] = [];
  const pb = playbook('sel', [playOf(ev, 'a1', 'left', []), playOf(ev, 'b1', 'right', ['a1']), playOf(ev, 'c1', 'all', ['b1']), playOf(ev, 'd1', 'all', [])]);
  const resolved = resolveInventory(inv);
  const plan = resolvePlan(pb, resolved, { tags: ['r-a1', 'r-c1', 'r-d1'] });
  assert.equal(
    plan.map((pp) => [pp.play.name, pp.after!.map((i) => pb.plays[i]!.name)]),
    [['a1', []], ['c1', ['a1']], ['d1', []]],
  );
  // Without `after`, a play waits for every earlier play that is selected.
  const seq = playbook('seq', [playOf(ev, 's1', 'left', undefined), playOf(ev, 's2', 'right', undefined), playOf(ev, 's3', 'all', undefined)]);
  assert.equal(resolvePlan(seq, resolved, { limit: ['left'] }).map((pp) => [pp.play.name, pp.after]), [['s1', []], ['s3', [0]]]);
});

test('planning refuses unknown, later, self, ambiguous and cyclic after, naming the play, before any host is touched', async () => {
  const ev: string[] = [];
  const bad = (plays: Play[]) => {
    try {
      resolvePlan(playbook('bad', plays), resolveInventory(inv));
    } catch (e) {
      assert.instance(e, SelectionError);
      return (e as Error).message;
    }
    assert.unreachable('planning accepted it');
    return '';
  };
  assert.match(bad([playOf(ev, 'one', 'left', []), playOf(ev, 'two', 'left', ['onw'])]), 'play "two": after "onw" names no play of the playbook — did you mean "one"?');
  assert.match(bad([playOf(ev, 'one', 'left', ['two']), playOf(ev, 'two', 'left', [])]), 'play "one": after "two": that play comes later in the playbook; a play may wait only for earlier plays');
  assert.match(bad([playOf(ev, 'one', 'left', ['one'])]), 'play "one": after "one": a play cannot wait for itself');
  assert.match(bad([playOf(ev, 'x', 'left', []), playOf(ev, 'x', 'right', []), playOf(ev, 'y', 'left', ['x'])]), 'play "y": after "x" is ambiguous: 2 plays are named so');
  assert.match(
    bad([playOf(ev, 'one', 'left', ['two']), playOf(ev, 'two', 'left', ['one'])]),
    'in a cycle: "one" → "two" → "one"',
  );
  // A play without after waits for every earlier one: naming a later one closes a cycle too.
  assert.match(bad([playOf(ev, 'one', 'left', ['two']), playOf(ev, 'two', 'left', undefined)]), 'in a cycle: "one" → "two" → "one"');
  assert.match(bad([play({ name: 'one', hosts: 'left', roles: [role({ name: 'r', tasks: [task({ name: 't', do: step(ev, 'x') })] })], after: 'zero' as unknown as string[] })]), 'play "one": after must be a list of play names');
  // Through run(): nothing connects (the inventory's hosts do not exist).
  let text = '';
  const r = run(playbook('bad', [playOf(ev, 'one', 'left', ['nope'])]), { inventory: inv, out: { write: (s) => void (text += s) } });
  await r.then(
    () => assert.unreachable('ran'),
    (e) => assert.match((e as Error).message, 'play "one": after "nope" names no play'),
  );
  assert.equal(ev, []);
  assert.is(text, '');
});

test('--list-tasks shows what each play waits for (the graph; a play that starts at once has no after line)', async () => {
  const ev: string[] = [];
  let text = '';
  const out = { write: (s: string) => void (text += s) };
  await run(playbook('g', [playOf(ev, 'one', 'left', []), playOf(ev, 'two', 'right', []), playOf(ev, 'three', 'all', ['one', 'two'])]), { inventory: inv, listTasks: true, out });
  assert.is(
    text,
    'play: one\n  r-one : t-one    TAGS: [r-one]\n' +
      'play: two\n  r-two : t-two    TAGS: [r-two]\n' +
      'play: three\n  after: one, two\n  r-three : t-three    TAGS: [r-three]\n',
  );
  text = '';
  await run(playbook('s', [playOf(ev, 'one', 'left', undefined)]), { inventory: inv, listTasks: true, out });
  assert.is(text, 'play: one\n  r-one : t-one    TAGS: [r-one]\n');
});

test('site.ts: the homelab graph, as docs/ARCHITECTURE.md orders it', async () => {
  const { site } = await import('../../playbooks/site.ts');
  const after = Object.fromEntries(site.plays.map((p) => [p.name, p.after]));
  assert.equal(after, {
    proxmox: [],
    'certificate authority': ['proxmox'],
    trust: ['certificate authority'],
    gateway: ['trust'],
    traefik: ['trust'],
    'swarm manager': ['trust'],
    'swarm workers': ['swarm manager'],
    swarm: ['swarm workers'],
    'docker api': ['swarm', 'gateway'],
    'docker api client': ['docker api', 'traefik'],
    portainer: ['docker api'],
    'qdrant certificate': ['trust'],
    qdrant: ['portainer', 'qdrant certificate'],
  });
});

test.run();
