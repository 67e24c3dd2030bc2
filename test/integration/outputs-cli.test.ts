// Typed task outputs from the command line (docs/outputs.md): a selection that keeps a reader
// but leaves out its producer exits 4 at planning time, naming both tasks and the play, and
// touches no host; with the producer selected too, the reader gets its value on the host.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SshdLab } from '../harness/sshd.ts';
import { hosts } from './helpers.ts';

const O = suite('outputs-cli');
let lab: SshdLab;
let invFile: string;

O.before(async () => {
  lab = await hosts(1);
  invFile = join(lab.dir, 'inventory.yaml');
  const [a] = lab.hosts;
  writeFileSync(
    invFile,
    `knownHosts: ${lab.knownHosts}\nhosts:\n  alpha:\n    address: 127.0.0.1\n    port: ${a!.port}\n    user: ${lab.user}\n    key: ${lab.clientKey}\n    become: true\n    vars: { root: ${a!.root} }\n`,
  );
});
O.after(async () => {
  await lab?.stop();
});

/** A playbook as a user runs it from the checkout on any Node (docs/speed.md: `npx zx` needs Node >= 22.18). */
function phoenix(playbook: string, ...args: string[]) {
  const r = spawnSync(process.execPath, ['--import=phoenix/boot', playbook, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const FIXTURE = 'test/fixtures/outputs.ts';

O('--tags keeping the reader without its producer: exit 4 naming both tasks and the play; the host is not touched', () => {
  const r = phoenix(FIXTURE, '--inventory', invFile, '--tags', 'write');
  assert.is(r.code, 4, r.out + r.err);
  assert.match(r.err, 'play "app": task "write config" (role app) reads the output "app config" of task "render config" (role app), which --tags write leaves out; add one of its tags (app, render) to --tags');
  assert.match(r.err, 'nothing ran');
  assert.not.ok(existsSync(join(lab.hosts[0]!.root, 'app.conf')));
});

O('--tags with the producer too: the reader writes the value on the host', () => {
  const r = phoenix(FIXTURE, '--inventory', invFile, '--tags', 'write,render');
  assert.is(r.code, 0, r.out + r.err);
  assert.is(readFileSync(join(lab.hosts[0]!.root, 'app.conf'), 'utf8'), 'host=alpha\n');
});

O("site.ts --start-at-task past traefik's render: exit 4 at planning time, before any host (it failed on lxc102 before)", () => {
  // The shipped inventory's hosts are not reachable here: reaching one would fail otherwise.
  const r = phoenix('playbooks/site.ts', '--start-at-task', 'traefik : static config', '--check');
  assert.is(r.code, 4, r.out + r.err);
  assert.match(r.err, 'play "traefik": task "static config" (role traefik) reads the output "traefik config" of task "render and check config" (role traefik), which --start-at-task "traefik : static config" skips');
  assert.not.match(r.out, /lxc102/);
});

O.run();
