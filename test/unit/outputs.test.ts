// Typed task outputs (docs/outputs.md): a task registers an output<T>() handle, a later task
// lists it in `uses` and reads it typed. A selection that keeps the reader but leaves out its
// producer is a planning error naming both tasks and the play, before any host is touched (a
// recording connection shows nothing was sent); at run time a producer skipped by `when`, or a
// read not declared in `uses`, fails the reading task naming both.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Engine, type HostRecord, type PlayRunner, type TaskRecord } from '../../runner/engine.ts';
import type { Connection, ExecOptions, ExecResult } from '../../runner/connection/types.ts';
import { compute, handler, output, play, playbook, resolveInventory, resolvePlan, role, shell, startAt, task, SelectionError, type Playbook } from '../../runner/index.ts';
import type { Selection } from '../../runner/selection.ts';
import phoenix from '../../inventory.ts';
import { site } from '../../playbooks/site.ts';
import { syncPlaybook } from '../../playbooks/sync.ts';

process.env.PHOENIX_PORTAINER_ADMIN_PASSWORD ??= 'env-admin-password-for-the-test';
process.env.PHOENIX_QDRANT_API_KEY ??= 'env-qdrant-key-for-the-test';

const inv = resolveInventory({ hosts: { h1: { address: '10.0.0.1', groups: ['web'] }, h2: { address: '10.0.0.2', groups: ['web'] } } });

/** Records every command sent to a host; answers each with exit 0 and no output. */
class Recording implements Connection {
  readonly hostName: string;
  private readonly log: string[];
  constructor(hostName: string, log: string[]) {
    this.hostName = hostName;
    this.log = log;
  }
  async exec(cmd: string, _o: ExecOptions = {}): Promise<ExecResult> {
    this.log.push(`${this.hostName}: ${cmd}`);
    return { code: 0, stdout: '', stderr: '', stdoutBuffer: Buffer.alloc(0) };
  }
  async abort() {
    return false;
  }
  async close() {}
}

/** Plans (as the CLI does: resolvePlan, then --start-at-task) and runs through the real engine on recording connections. */
async function go(pb: Playbook<any>, sel: Selection = {}, check = false): Promise<{ sent: string[]; records: (TaskRecord & { host: string })[]; error?: Error }> {
  const sent: string[] = [];
  const records: (TaskRecord & { host: string })[] = [];
  const engine = new Engine({ check, diff: false, forks: 1, knownHosts: '/dev/null', acceptNewHostKeys: false, hosts: inv.hosts, open: async (h) => new Recording(h.name, sent) });
  const runner: PlayRunner = {
    async runPlay(_pp, hosts, runHost) {
      const out: HostRecord[] = [];
      for (const h of hosts) out.push(await runHost(h, { taskStart: () => undefined, taskEnd: () => undefined }));
      return out;
    },
  };
  try {
    const plan = startAt(resolvePlan(pb, inv, sel), sel.startAtTask, pb.name);
    for (const pp of plan) {
      const rec = await engine.runPlay(pp, runner);
      for (const [host, hr] of Object.entries(rec.hosts)) for (const t of hr.tasks) records.push({ ...t, host });
    }
    return { sent, records };
  } catch (e) {
    return { sent, records, error: e as Error };
  } finally {
    await engine.close();
  }
}

interface Rendered {
  text: string;
  lines: number;
}

function book(opts: { producerTags?: string[]; readerTags?: string[]; producerWhen?: () => boolean; seen?: unknown[] } = {}) {
  const config = output<Rendered>('app config');
  const render = task({
    name: 'render config',
    tags: opts.producerTags,
    when: opts.producerWhen,
    register: config,
    do: ({ host }) => compute('render the app config', () => ({ text: `name=${host.name}\n`, lines: 1 })),
  });
  const write = task({
    name: 'write config',
    tags: opts.readerTags,
    uses: [config],
    // Typed: `get(config)` is a Rendered (a typo in `.text` is a compile error).
    do: ({ get }) => {
      const c = get(config);
      opts.seen?.push(c);
      return shell(`printf %s ${JSON.stringify(c.text)} > /etc/app.conf`);
    },
  });
  const other = task({ name: 'unrelated', tags: ['other'], do: shell('true') });
  return playbook('app', [play({ name: 'app play', hosts: 'web', roles: [role({ name: 'app', tasks: [render, other, write] })] })]);
}

test('round trip: the reader gets the value its producer returned, per host, typed', async () => {
  const seen: unknown[] = [];
  const r = await go(book({ seen }));
  assert.is(r.error, undefined);
  assert.equal(seen, [
    { text: 'name=h1\n', lines: 1 },
    { text: 'name=h2\n', lines: 1 },
  ]);
  assert.ok(r.sent.includes('h1: printf %s "name=h1\\n" > /etc/app.conf'), r.sent.join('\n'));
  assert.ok(r.sent.includes('h2: printf %s "name=h2\\n" > /etc/app.conf'));
});

test('check mode: a producer that returns its value in check mode (compute) keeps its reader working', async () => {
  const seen: unknown[] = [];
  const r = await go(book({ seen }), {}, true);
  assert.is(r.error, undefined);
  assert.is(seen.length, 2);
  // The write itself is a change: reported, held back.
  assert.equal(r.records.filter((x) => x.task === 'write config').map((x) => x.status), ['changed', 'changed']);
  assert.not.ok(r.sent.some((c) => c.includes('/etc/app.conf')), r.sent.join('\n'));
});

test('--tags that keeps the reader but leaves out its producer: a planning error naming both tasks and the play; nothing sent', async () => {
  const r = await go(book({ producerTags: ['render'], readerTags: ['write'] }), { tags: ['write'] });
  assert.instance(r.error, SelectionError);
  const m = r.error!.message;
  assert.match(m, 'play "app play": task "write config" (role app) reads the output "app config" of task "render config" (role app), which --tags write leaves out');
  assert.match(m, 'add one of its tags (app, render) to --tags');
  assert.match(m, 'nothing ran');
  assert.equal(r.sent, []);
  assert.equal(r.records, []);
  // With the producer's tag too, both run.
  const ok = await go(book({ producerTags: ['render'], readerTags: ['write'] }), { tags: ['write', 'render'] });
  assert.is(ok.error, undefined);
  assert.equal([...new Set(ok.records.map((x) => x.task))], ['render config', 'write config']);
});

test('--tags that leaves out both, or keeps the producer alone, is fine', async () => {
  const r = await go(book({ producerTags: ['render'], readerTags: ['write'] }), { tags: ['other'] });
  assert.is(r.error, undefined);
  const p = await go(book({ producerTags: ['render'], readerTags: ['write'] }), { tags: ['render'] });
  assert.is(p.error, undefined);
});

test('--skip-tags and --start-at-task that leave out the producer: planning errors saying which flag', async () => {
  const s = await go(book({ producerTags: ['render'] }), { skipTags: ['render'] });
  assert.instance(s.error, SelectionError);
  assert.match(s.error!.message, 'reads the output "app config" of task "render config" (role app), which --skip-tags render leaves out');
  assert.equal(s.sent, []);
  const a = await go(book(), { startAtTask: 'unrelated' });
  assert.instance(a.error, SelectionError);
  assert.match(a.error!.message, 'which --start-at-task "unrelated" skips (it runs before); start at "render config" or earlier');
  assert.equal(a.sent, []);
});

test('a producer tagged "always" comes along with --tags, as in Ansible', async () => {
  const r = await go(book({ producerTags: ['always'], readerTags: ['write'] }), { tags: ['write'] });
  assert.is(r.error, undefined);
});

test('the play shape: a reader before its producer, or with no producer in its play, fails planning', async () => {
  const o = output<number>('a number');
  const early = playbook('shape', [
    play({ name: 'p', hosts: 'h1', roles: [role({ name: 'r', tasks: [task({ name: 'reader', uses: [o], do: ({ get }) => shell(`echo ${get(o)}`) }), task({ name: 'producer', register: o, do: compute('n', () => 1) })] })] }),
  ]);
  const e1 = await go(early);
  assert.match(e1.error!.message, 'play "p", role r, task "reader" reads the output "a number" of task "producer", which runs after it');
  const none = playbook('shape', [
    play({ name: 'p1', hosts: 'h1', roles: [role({ name: 'r1', tasks: [task({ name: 'producer', register: o, do: compute('n', () => 1) })] })] }),
    play({ name: 'p2', hosts: 'h1', roles: [role({ name: 'r2', tasks: [task({ name: 'reader', uses: [o], do: ({ get }) => shell(`echo ${get(o)}`) })] })] }),
  ]);
  const e2 = await go(none);
  assert.match(e2.error!.message, 'play "p2", role r2, task "reader" reads the output "a number", which no task of the play registers');
  assert.equal([...e1.sent, ...e2.sent], []);
});

test('a string register (the old bag) is a planning error pointing at output<T>()', async () => {
  const pb = playbook('old', [play({ name: 'p', hosts: 'h1', roles: [role({ name: 'r', tasks: [task({ name: 'x', register: 'x' as any, do: shell('true') })] })] })]);
  const r = await go(pb);
  assert.match(r.error!.message, 'play "p", role r, task "x": register must be an output handle');
  assert.match(r.error!.message, 'not the string "x"');
});

test('run time: a producer skipped by its `when` has no value; the reader fails naming both tasks; result() says skipped', async () => {
  const r = await go(book({ producerWhen: () => false }));
  const w = r.records.find((x) => x.task === 'write config' && x.host === 'h1')!;
  assert.is(w.status, 'failed');
  assert.is(w.error!.message, 'task "write config" reads the output "app config" of task "render config", which was skipped on host h1 (condition false): it has no value');
  const o = output<unknown>('flag');
  const seen: unknown[] = [];
  const pb = playbook('skip', [
    play({
      name: 'p',
      hosts: 'h1',
      roles: [
        role({
          name: 'r',
          tasks: [
            task({ name: 'maybe', when: () => false, register: o, do: shell('true') }),
            task({ name: 'after', uses: [o], when: ({ result }) => (seen.push(result(o)), result(o).changed === true), do: shell('true') }),
          ],
        }),
      ],
    }),
  ]);
  const s = await go(pb);
  assert.is(s.error, undefined);
  assert.equal(seen, [{ changed: false, skipped: true, failed: false, msg: 'condition false', data: undefined }]);
});

test('run time: reading an output the task did not list in `uses` fails it, so planning is never bypassed', async () => {
  const o = output<number>('n');
  const pb = playbook('undeclared', [
    play({ name: 'p', hosts: 'h1', roles: [role({ name: 'r', tasks: [task({ name: 'producer', register: o, do: compute('n', () => 1) }), task({ name: 'reader', do: ({ get }) => shell(`echo ${get(o)}`) })] })] }),
  ]);
  const r = await go(pb);
  const rec = r.records.find((x) => x.task === 'reader')!;
  assert.is(rec.status, 'failed');
  assert.match(rec.error!.message, 'task "reader" reads the output "n" without listing it in its `uses`');
});

test('check mode: a producer whose change is held back has no value; its reader reports unknown, not failed', async () => {
  const o = output<{ stdout: string }>('made');
  const pb = playbook('held', [
    play({
      name: 'p',
      hosts: 'h1',
      roles: [role({ name: 'r', tasks: [task({ name: 'make', register: o, do: { module: 'x', summary: 'x', run: async (ctx) => (await ctx.run('make-it'), { changed: true, data: { stdout: 'x' } }) } }), task({ name: 'use', uses: [o], do: ({ get }) => shell(`echo ${get(o).stdout}`, { readOnly: true }) })] })],
    }),
  ]);
  const r = await go(pb, {}, true);
  assert.equal(r.records.map((x) => [x.task, x.status]), [
    ['make', 'unknown'],
    ['use', 'unknown'],
  ]);
  assert.match(r.records[1]!.msg!, 'task "use" reads the output "made" of task "make", whose value is not known in check mode');
});

test('a handler reads an output when its producer ran (ran/result), without `uses`', async () => {
  const o = output<string>('previous');
  const seen: unknown[] = [];
  const h = handler('after', ({ ran, result }) => (seen.push(ran(o) ? result(o).data : 'none'), shell('true')));
  const mk = (withProducer: boolean) =>
    playbook('h', [
      play({
        name: 'p',
        hosts: 'h1',
        roles: [role({ name: 'r', tasks: [...(withProducer ? [task({ name: 'producer', register: o, do: compute('p', () => 'old') })] : []), task({ name: 'notifier', notify: [h], do: shell('x') })] })],
      }),
    ]);
  await go(mk(true));
  await go(mk(false));
  assert.equal(seen, ['old', 'none']);
});

// The homelab's own readers: every one of them is checked at planning time.
const prod = resolveInventory(phoenix);

test('site: --start-at-task past traefik\'s render is a planning error naming the render and the reader (it failed on the host before)', () => {
  const plan = resolvePlan(site, prod, {});
  assert.throws(() => startAt(plan, 'traefik : static config', site.name), (e: Error) =>
    e instanceof SelectionError &&
    e.message.includes('play "traefik": task "static config" (role traefik) reads the output "traefik config" of task "render and check config" (role traefik), which --start-at-task "traefik : static config" skips'),
  );
  assert.throws(() => startAt(plan, 'portainer : portainer stack', site.name), /task "portainer stack" \(role portainer\) reads the output "portainer API" of task "portainer API \(a one-off Portainer on a fresh swarm\)"/);
  assert.throws(() => startAt(plan, 'nginx : apply http site now', site.name), /task "apply http site now" \(role nginx\) reads the output "http site" of task "http site"/);
  // Whole roles (the tags a user gives) keep producers and readers together.
  for (const tags of [['traefik'], ['qdrant'], ['portainer'], ['nginx'], ['swarm'], ['docker'], ['docker-api'], ['traefik-cert']]) resolvePlan(site, prod, { tags });
});

test('sync all --tags qdrant: the qdrant stack reads the bootstrap\'s output, so planning says to add portainer (or run sync qdrant)', () => {
  assert.throws(() => resolvePlan(syncPlaybook('all'), prod, { tags: ['qdrant'] }), /task "qdrant stack via the Portainer API" \(role qdrant\) reads the output "portainer API" of task "portainer API \(a one-off Portainer on a fresh swarm\)" \(role portainer\), which --tags qdrant leaves out; add one of its tags \(portainer, sync\)/);
  resolvePlan(syncPlaybook('qdrant'), prod, { tags: ['qdrant'] });
  resolvePlan(syncPlaybook('all'), prod, {});
});

test.run();
