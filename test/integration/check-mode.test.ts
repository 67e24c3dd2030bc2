// Check mode against real OpenSSH servers (test/harness/sshd.ts): the engine, not the modules,
// keeps a --check run from changing a host. Every module that can run in the harness, a module
// that "forgets" check mode, a delegated command and an HTTP POST: the hosts' files (and the
// HTTP server) are the same before and after --check, and the real run then changes exactly
// what the check run reported.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SshdLab } from '../harness/sshd.ts';
import { blockInFile, copy, fetchFile, file, http, installBinary, play, playbook, role, run, secret, shell, task, template, type Action, type RunResult } from '../../runner/index.ts';
import { capture, hosts, inventoryFor, snapshot, type TestVars } from './helpers.ts';

const C = suite('check mode over ssh');
let lab: SshdLab;
let server: Server;
let base = '';
const received: string[] = [];
const local = mkdtempSync(join(tmpdir(), 'phx-check-int-'));

C.before(async () => {
  lab = await hosts(2);
  server = createServer((q, s) => {
    let body = '';
    q.on('data', (d) => (body += d));
    q.on('end', () => {
      received.push(`${q.method} ${q.url} ${body}`);
      s.writeHead(q.method === 'POST' ? 201 : 200).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
C.after(async () => {
  await lab?.stop();
  server?.close();
  rmSync(local, { recursive: true, force: true });
});

const TOOL = '#!/bin/sh\necho tool\n';
writeFileSync(join(local, 'tool'), TOOL);
writeFileSync(join(local, 'page.hbs'), '<h1>{{title}}</h1>\n');
const KEY = secret('check-mode-secret-value-42', 'test key');

/** A module written without any thought for check mode: it just runs its change. */
const careless = (path: string): Action => ({
  module: 'careless',
  summary: `careless ${path}`,
  async run(ctx) {
    if ((await ctx.probe(`test -f ${path}`)).code === 0) return { changed: false };
    const r = await ctx.run(`printf '%s' ${KEY.reveal()} > ${path}`);
    return { changed: r.code === 0 };
  },
});

/** Reads host1 from host0's task (delegate_to), then writes there only when asked. */
const delegated = (path: string): Action => ({
  module: 'delegated',
  summary: `delegated ${path}`,
  async run(ctx) {
    const onHost1 = await ctx.delegate!('host1');
    if ((await onHost1(`test -f ${path}`, { readOnly: true })).code === 0) return { changed: false };
    return ctx.change({ changed: true, msg: `would touch ${path} on host1` }, async () => {
      await onHost1(`touch ${path}`);
    });
  },
});

const everything = (host1Root: string) =>
  playbook<TestVars>('check', [
    play({
      hosts: 'host0',
      roles: [
        role<TestVars>({
          name: 'all modules',
          tasks: [
            task({ name: 'dir', do: ({ vars }) => file({ path: `${vars.root}/etc`, state: 'directory', mode: '0750' }) }),
            task({ name: 'touch', do: ({ vars }) => file({ path: `${vars.root}/etc/flag`, state: 'touch' }) }),
            task({ name: 'link', do: ({ vars }) => file({ path: `${vars.root}/current`, state: 'link', src: `${vars.root}/etc` }) }),
            task({ name: 'absent', do: ({ vars }) => file({ path: `${vars.root}/old`, state: 'absent' }) }),
            task({ name: 'copy', do: ({ vars }) => copy({ dest: `${vars.root}/etc/app.conf`, content: 'a = 1\n', mode: '0644' }) }),
            task({ name: 'secret copy', do: ({ vars }) => copy({ dest: `${vars.root}/etc/key`, content: KEY }) }),
            task({ name: 'template', do: ({ vars }) => template({ src: join(local, 'page.hbs'), dest: `${vars.root}/etc/index.html`, vars: { title: 'hi' } }) }),
            task({ name: 'block', do: ({ vars }) => blockInFile({ path: `${vars.root}/hosts`, block: '10.0.0.1 a', create: true }) }),
            task({ name: 'shell', do: ({ vars }) => shell(`echo ran >> ${vars.root}/ran.log`) }),
            task({ name: 'guarded shell', do: ({ vars }) => shell(`date > ${vars.root}/etc/initialized`, { creates: `${vars.root}/etc/initialized` }) }),
            task({ name: 'read-only shell', do: ({ vars }) => shell(`ls ${vars.root}`, { readOnly: true }) }),
            task({
              name: 'binary',
              do: ({ vars }) => installBinary({ dest: `${vars.root}/tool`, source: { localPath: join(local, 'tool'), sha256: createHash('sha256').update(TOOL).digest('hex') } }),
            }),
            task({ name: 'fetch', do: ({ vars }) => fetchFile({ src: `${vars.root}/hosts`, dest: join(local, 'fetched', 'hosts') }) }),
            task({ name: 'post', do: http({ url: `${base}/stacks`, method: 'POST', body: { Name: 'x' }, status: [201] }) }),
            task({ name: 'get', do: http({ url: `${base}/health` }) }),
            task({ name: 'careless', do: ({ vars }) => careless(`${vars.root}/careless`) }),
            task({ name: 'delegated', do: () => delegated(`${host1Root}/delegated`) }),
          ],
        }),
      ],
    }),
  ]);

const changedTasks = (r: RunResult) =>
  r.plays.flatMap((p) => Object.values(p.hosts).flatMap((h) => h.tasks.filter((t) => t.status === 'changed' || t.status === 'unknown').map((t) => t.task))).sort();

C('--check on fresh hosts changes no file on either host and sends no POST; the real run changes what it reported', async () => {
  const inv = inventoryFor(lab);
  const [r0, r1] = [lab.hosts[0]!.root, lab.hosts[1]!.root];
  const pb = everything(r1);
  const before = [snapshot(r0), snapshot(r1)];
  const posts = received.length;
  const c = capture();
  const check = await run(pb, { inventory: inv, check: true, out: c.out, json: join(local, 'check.json') });
  assert.equal([snapshot(r0), snapshot(r1)], before, 'check mode changed a file on a host');
  assert.not.ok(existsSync(join(local, 'fetched')), 'check mode wrote on the control machine');
  assert.equal(received.slice(posts).map((x) => x.split(' ')[0]), ['GET'], 'check mode sent more than the GET');
  assert.is(check.exitCode, 0);
  const tasks = check.plays[0]!.hosts.host0!.tasks;
  const careless = tasks.find((t) => t.task === 'careless')!;
  assert.is(careless.status, 'unknown');
  assert.match(careless.msg!, /check mode: not run on host0, not marked read-only: printf '%s' \*+ > .*\/careless/);
  // The secret is in no report: terminal, JSON.
  assert.not.match(c.text(), /check-mode-secret-value-42/);
  assert.not.match(readFileSync(join(local, 'check.json'), 'utf8'), /check-mode-secret-value-42/);

  const real = await run(pb, { inventory: inv, out: capture().out });
  assert.is(real.exitCode, 0);
  assert.equal(changedTasks(real), changedTasks(check), 'the real run changed other tasks than --check reported');
  assert.ok(existsSync(`${r0}/careless`) && existsSync(`${r1}/delegated`) && existsSync(join(local, 'fetched', 'hosts')));
  assert.equal(received.slice(posts).filter((x) => x.startsWith('POST')), ['POST /stacks {"Name":"x"}']);
  // Converged: --check and a real run now change nothing (the POST is a change each time it is sent).
  const again = await run(pb, { inventory: inv, check: true, out: capture().out });
  assert.equal(changedTasks(again), ['post', 'shell']);
});

C.run();
