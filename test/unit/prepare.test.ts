// A role's `prepare` (RoleOptions.prepare): host-free work started when the run starts, waited for
// by the role's first task on each host. Order is asserted on recorded events and gates, never on
// timing (a deadline only guards against a hang).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Engine } from '../../runner/engine.ts';
import { gate, idle } from '../harness/engine-fakes.ts';
import { PlainRunner, recap } from '../../runner/report.ts';
import { play, playbook, resolveInventory, resolvePlan, role, task, TaskError, type Action, type Playbook } from '../../runner/index.ts';
import { primeStackSecret, secretName, stackSecret } from '../../stacks/types.ts';
import { Secret } from '../../runner/secret.ts';

const inv = {
  hosts: {
    a: { address: '10.0.0.1', groups: ['left'], vars: { n: 1 } },
    b: { address: '10.0.0.2', groups: ['right'], vars: { n: 2 } },
  },
};



function withDeadline<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new TaskError(`never happened: ${what}`)), 3000)))]).finally(() => clearTimeout(timer));
}

function step(events: string[], label: string, opts: { opens?: { open(): void } } = {}): Action {
  return {
    module: 'step',
    summary: label,
    async run(ctx) {
      events.push(`task ${label} ${ctx.host.name}`);
      opts.opens?.open();
      return { changed: false };
    },
  };
}

/** Runs the plan as `phoenix` does (runner/cli.ts): prepare, then the plays. */
async function runPb(pb: Playbook<any>, sel = {}) {
  const resolved = resolveInventory(inv);
  const engine = new Engine({ check: false, diff: false, forks: 10, knownHosts: '/dev/null', acceptNewHostKeys: false, hosts: resolved.hosts, open: async () => idle });
  let text = '';
  const runner = new PlainRunner({ write: (s) => void (text += s) }, { diff: false, color: false });
  const plan = resolvePlan(pb, resolved, sel);
  try {
    engine.prepare(plan);
    const r = await engine.runPlan(plan, runner);
    return { ...r, text, recap: recap(r.plays) };
  } finally {
    await engine.close();
  }
}

test('prepare starts when the run starts, before the first play, for every host its role runs on, with its vars', async () => {
  const ev: string[] = [];
  const first = gate();
  const later = role<{ n: number }>({
    name: 'later',
    // Each host's prepare ends only once the first play has started: so it must have started before.
    prepare: async (vars) => {
      ev.push(`prepare later n=${vars.n}`);
      await withDeadline(first.promise, 'the first play started');
      ev.push(`prepared later n=${vars.n}`);
    },
    tasks: [task({ name: 'uses it', do: step(ev, 'later') })],
  });
  const pb = playbook('p', [
    play({ name: 'one', hosts: 'left', roles: [role({ name: 'first', tasks: [task({ name: 't', do: step(ev, 'first', { opens: first }) })] })] }),
    play({ name: 'two', hosts: 'all', roles: [later] }),
  ]);
  const r = await runPb(pb);
  assert.equal(Object.values(r.recap).map((c) => c.status), ['ok', 'ok']);
  const i = (e: string) => {
    const k = ev.indexOf(e);
    assert.ok(k >= 0, `no "${e}" in ${JSON.stringify(ev)}`);
    return k;
  };
  for (const n of [1, 2]) assert.ok(i(`prepare later n=${n}`) < i('task first a'), JSON.stringify(ev));
  // The role's task on each host ran after that host's prepare had ended.
  assert.ok(i('prepared later n=1') < i('task later a'), JSON.stringify(ev));
  assert.ok(i('prepared later n=2') < i('task later b'), JSON.stringify(ev));
});

test('the role\'s first task waits for its prepare; once per role and host, across plays', async () => {
  let calls = 0;
  const done = new Set<string>();
  const seen: string[] = [];
  const r1 = role<{ n: number }>({
    name: 'r1',
    prepare: async (vars) => {
      calls++;
      await new Promise((res) => setTimeout(res, 20));
      done.add(`n${vars.n}`);
    },
    tasks: [
      task({
        name: 'reads',
        do: ({ vars }) => ({ module: 'read', summary: 'read', run: async () => (seen.push(done.has(`n${vars.n}`) ? 'ready' : 'NOT READY'), { changed: false }) }),
      }),
    ],
  });
  const pb = playbook('p', [play({ name: 'one', hosts: 'all', roles: [r1] }), play({ name: 'again', hosts: 'left', roles: [r1] })]);
  await runPb(pb);
  assert.equal(seen, ['ready', 'ready', 'ready']);
  assert.is(calls, 2, 'one prepare per host (a, b), not per play');
});

test('a prepare that fails fails its host at the role\'s first task, named; the role does not run there; other hosts go on', async () => {
  const ev: string[] = [];
  const r1 = role<{ n: number }>({
    name: 'keys',
    prepare: (vars) => {
      if (vars.n === 2) throw new Error('cannot derive the key');
    },
    tasks: [task({ name: 'first', do: step(ev, 'first') }), task({ name: 'second', do: step(ev, 'second') })],
  });
  const r = await runPb(playbook('p', [play({ name: 'one', hosts: 'all', roles: [r1] })]));
  assert.equal(r.recap.a!.status, 'ok');
  assert.equal(r.recap.b!.status, 'failed');
  assert.equal(ev.filter((e) => e.endsWith(' b')), []);
  const rec = r.plays[0]!.hosts.b!.tasks[0]!;
  assert.is(rec.task, 'first');
  assert.is(rec.status, 'failed');
  assert.match(rec.error!.message, 'role keys: its prepare failed: cannot derive the key');
});

test("a failed prepare is the role's: ignoreErrors on its first task does not cover it", async () => {
  const ev: string[] = [];
  const r1 = role({
    name: 'keys',
    prepare: () => Promise.reject(new TaskError('no key', { stderr: 'why' })),
    tasks: [task({ name: 'first', ignoreErrors: true, do: step(ev, 'first') }), task({ name: 'second', do: step(ev, 'second') })],
  });
  const r = await runPb(playbook('p', [play({ name: 'one', hosts: 'left', roles: [r1] })]));
  assert.equal(r.recap.a!.status, 'failed');
  assert.equal(ev, []);
  const rec = r.plays[0]!.hosts.a!.tasks[0]!;
  assert.is(rec.ignored, undefined);
  assert.match(rec.error!.message, 'role keys: its prepare failed: no key');
  assert.is(rec.error!.stderr, 'why');
});

test('a role that --tags leaves out is not prepared', async () => {
  let calls = 0;
  const r1 = role({ name: 'skipped', prepare: () => void calls++, tasks: [task({ name: 't', do: step([], 's') })] });
  const r2 = role({ name: 'kept', tasks: [task({ name: 't', do: step([], 'k') })] });
  await runPb(playbook('p', [play({ name: 'one', hosts: 'all', roles: [r1, r2] })]), { tags: ['kept'] });
  assert.is(calls, 0);
});

test('primeStackSecret: the same name as computed in place; a secret it cannot read is left to stackSecret, which names the field', async () => {
  const v = new Secret('a-long-random-value-for-the-test', 'test');
  // Computed in place first (another stack/key), then primed and read for a new one.
  const inPlace = secretName('s1', 'k', v);
  await primeStackSecret('s2', 'k', v, 'x.k');
  const primed = stackSecret('s2', 'k', v, 'x.k').name;
  assert.match(primed, /^s2_k_[0-9a-f]{10}$/);
  assert.is(primed.slice(-10) === inPlace.slice(-10), false, 'salted by stack');
  // A primed name equals the one a fresh process computes (the scrypt parameters are the same).
  const again = await import(`../../stacks/types.ts?fresh=${Date.now()}`);
  assert.is(again.secretName('s2', 'k', v), primed);
  delete process.env.PHX_TEST_UNSET_SECRET;
  await primeStackSecret('s3', 'k', { env: 'PHX_TEST_UNSET_SECRET' }, 'qdrant.apiKey'); // resolves
  assert.throws(() => stackSecret('s3', 'k', { env: 'PHX_TEST_UNSET_SECRET' }, 'qdrant.apiKey'), /qdrant\.apiKey: environment variable PHX_TEST_UNSET_SECRET is not set/);
});

test.run();
