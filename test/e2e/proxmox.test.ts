// The proxmox role against the lab's Proxmox host (proxmox-standin, lab/standins/proxmox/,
// backed by the lab's guest containers): a second run changes 0; a raised memory limit is one
// PUT with the digest and shows on the container (after a --check that sent only GETs); a new
// LXC 104 and VM 1003 are created, started in startup order, reached over SSH with host keys
// learned through the hypervisor, configured by a small role, and removed; every refusal leaves
// the guest untouched; a failing task shows its log; a digest mismatch is refused; the API
// token shows nowhere (output, --json, --diff, process lists).
// Needs `npm run lab:up` (which starts the stand-in). Run under flock /tmp/phoenix-lab.lock.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readLabState, labProxmoxApi, PVE_STANDIN_STATE } from '../../lab/inventory.ts';
import { PveClient, req } from '../../roles/proxmox/api.ts';
import { secret } from '../../runner/secret.ts';

const E = suite('proxmox');
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const WORK = join(ROOT, 'tmp', `proxmox-e2e-${process.pid}`);
mkdirSync(WORK, { recursive: true });
const lab = readLabState();
const API = labProxmoxApi();
const TOKEN = readFileSync((API.tokenSecret as { file: string }).file, 'utf8').trim();
const NODE = API.node;
const LOG = join(PVE_STANDIN_STATE, 'requests.log');
const transcripts: string[] = [];
const psSamples: string[] = [];
const client = () => new PveClient({ url: API.url, tokenId: API.tokenId, tokenSecret: secret(TOKEN, 'test token'), caFile: API.caFile, taskTimeout: 120 });
const docker = (...a: string[]) => execFileSync('/usr/bin/docker', ['-H', 'unix:///run/phoenix-lab/docker.sock', ...a], { encoding: 'utf8', env: { ...process.env, DOCKER_CONFIG: '/var/lib/phoenix-lab/cli' } }).trim();

/** The memory limit the kernel enforces on a container (cgroup v1 or v2, read on this machine). */
function cgroupMemory(container: string): string {
  const id = docker('inspect', '-f', '{{.Id}}', container);
  for (const f of [`/sys/fs/cgroup/memory/docker/${id}/memory.limit_in_bytes`, `/sys/fs/cgroup/docker/${id}/memory.max`, `/sys/fs/cgroup/system.slice/docker-${id}.scope/memory.max`])
    if (existsSync(f)) return readFileSync(f, 'utf8').trim();
  throw new Error(`no memory cgroup found for ${container}`);
}

/** The stand-in's request log from `offset` on. */
const logSize = () => (existsSync(LOG) ? statSync(LOG).size : 0);
function requestsSince(offset: number): { method: string; path: string; params: string[]; status: number }[] {
  return readFileSync(LOG).subarray(offset).toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

/** A test inventory: the lab's, changed by `body` (TypeScript, `inv` in scope), in the repo so imports resolve. */
function inventory(name: string, body: string): string {
  const f = join(WORK, `${name}.ts`);
  writeFileSync(
    f,
    `import { labInventory } from '../../lab/inventory.ts';\nimport { lxcDefaults, vmDefaults } from '../../roles/proxmox/vars.ts';\nconst inv = labInventory();\nconst g = (h: string) => (inv.hosts[h]!.vars as any).guest;\nconst set = (h: string, guest: object) => { inv.hosts[h] = { ...inv.hosts[h]!, vars: { ...inv.hosts[h]!.vars, guest: { ...g(h), ...guest } } as any }; };\nvoid lxcDefaults; void vmDefaults; void set;\n${body}\nexport default inv;\n`,
  );
  return f;
}

/** `npx phoenix site` (or a test playbook) as a user runs it, with the process list sampled while it runs. */
function phoenix(args: string[], playbook = 'playbooks/site.ts'): Promise<{ code: number; out: string; json?: { recap: Record<string, { changed: number; failed: number }> } }> {
  const json = join(WORK, `run-${Date.now()}.json`);
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
    delete env.NODE_OPTIONS;
    // site.ts as a user runs it (npx phoenix site: Node 20 too); the test's own playbook (outside playbooks/) with node and tsx.
    const cmd = playbook === 'playbooks/site.ts' ? ['npx', '--no-install', 'phoenix', 'site'] : ['node', '--import=tsx', playbook];
    const p = spawn(cmd[0]!, [...cmd.slice(1), '--plain', '--json', json, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const ps = setInterval(() => {
      try {
        psSamples.push(execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }));
      } catch {
        /* ps raced with an exiting process */
      }
    }, 300);
    p.on('close', (code) => {
      clearInterval(ps);
      transcripts.push(out);
      let j;
      if (existsSync(json)) {
        const text = readFileSync(json, 'utf8');
        transcripts.push(text);
        j = JSON.parse(text);
      }
      resolve({ code: code ?? -1, out, json: j });
    });
  });
}

const proxmoxChanged = (r: { json?: { recap: Record<string, { changed: number }> } }) => r.json?.recap.proxmox?.changed;

async function config(kind: 'lxc' | 'qemu', vmid: number): Promise<Record<string, unknown>> {
  const c = client();
  try {
    return await c.send<Record<string, unknown>>(req.config(NODE, kind, vmid));
  } finally {
    c.close();
  }
}

E('the proxmox play on the lab: a second run changes 0', async () => {
  const r = await phoenix(['--inventory', 'lab', '--tags', 'proxmox']);
  assert.is(r.code, 0, r.out);
  const again = await phoenix(['--inventory', 'lab', '--tags', 'proxmox']);
  assert.is(again.code, 0, again.out);
  assert.is(proxmoxChanged(again), 0, again.out);
  assert.match(again.out, /5 guests as declared/);
});

E('memory raised: --check sends only GETs and shows the plan; the run is exactly one PUT with the digest; the limit is on the container', async () => {
  const inv = inventory('memory', `set('lxc102', { memory: 1536 });`);
  const before = await config('lxc', 102);
  const o1 = logSize();
  const check = await phoenix(['--inventory', inv, '--tags', 'proxmox', '--check', '--diff']);
  assert.is(check.code, 0, check.out);
  assert.match(check.out, /memory: 1024 → 1536/);
  const sentByCheck = requestsSince(o1);
  assert.ok(sentByCheck.length > 0);
  assert.equal(sentByCheck.filter((q) => q.method !== 'GET'), [], 'check mode sent only GET requests');
  assert.is((await config('lxc', 102)).digest, before.digest, '--check changed nothing');

  const o2 = logSize();
  const r = await phoenix(['--inventory', inv, '--tags', 'proxmox', '--diff']);
  assert.is(r.code, 0, r.out);
  const writes = requestsSince(o2).filter((q) => q.method !== 'GET');
  assert.equal(writes, [{ ...writes[0]!, method: 'PUT', path: `/nodes/${NODE}/lxc/102/config`, params: ['digest', 'memory'], status: 200 }]);
  assert.is(docker('inspect', '-f', '{{.HostConfig.Memory}}', 'lxc102'), String(1536 * 1024 * 1024), 'the new limit is on the guest container');
  assert.is(cgroupMemory('lxc102'), String(1536 * 1024 * 1024), 'and in its cgroup');
  const after = await config('lxc', 102);
  const { digest: _a, memory: m1, ...restAfter } = after;
  const { digest: _b, memory: m0, ...restBefore } = before;
  assert.equal(restAfter, restBefore, 'nothing else changed');
  assert.equal([m0, m1].map(Number), [1024, 1536]);
  const again = await phoenix(['--inventory', inv, '--tags', 'proxmox']);
  assert.is(proxmoxChanged(again), 0, again.out);

  // Back to the lab's declaration.
  const back = await phoenix(['--inventory', 'lab', '--tags', 'proxmox']);
  assert.is(back.code, 0, back.out);
  assert.is(docker('inspect', '-f', '{{.HostConfig.Memory}}', 'lxc102'), String(1024 * 1024 * 1024));
});

E('refusals: re-creation, shrinking, a vmid of the other kind; named key, nothing sent but GETs, guest untouched', async () => {
  const cases: [string, string, RegExp][] = [
    ['ostemplate', `set('lxc101', { ostemplate: 'local:vztmpl/alpine-3.20-default_20240908_amd64.tar.xz', memory: 2048 });`, /lxc101 \(lxc 101\): ostemplate: the guest was created from local:vztmpl\/debian-12/],
    ['unprivileged', `set('lxc101', { unprivileged: false });`, /lxc101 \(lxc 101\): unprivileged: the container is unprivileged, the inventory says privileged/],
    ['storage', `set('lxc101', { rootfs: { storage: 'tank', sizeGb: 8 } });`, /lxc101 \(lxc 101\): rootfs\.storage: the root disk is on storage "local-lvm"/],
    ['shrink', `set('lxc101', { rootfs: { storage: 'local-lvm', sizeGb: 2 } });`, /lxc101 \(lxc 101\): rootfs\.size: the disk is 8G, the inventory says 2G; disks are never shrunk/],
    ['kind', `inv.hosts.other = { address: '192.168.201.250', groups: [], vars: { guestId: 1001, guest: lxcDefaults({ domain: 'x.lan', gateway: '192.168.201.1', bridge: 'vmbr0', prefix: 24, nameserver: '192.168.201.1', sshPublicKeys: g('lxc101').sshPublicKeys }, 'Other', '192.168.201.250', { order: 9 }) } as any };\nset('vm1001', {}); (inv.hosts.vm1001!.vars as any).guestId = 1001; delete (inv.hosts.vm1001!.vars as any).guest;`, /other \(lxc 1001\): vmid: 1001 exists as a VM but is declared as an LXC container/],
  ];
  for (const [name, body, re] of cases) {
    const before = await config('lxc', 101);
    const o = logSize();
    const r = await phoenix(['--inventory', inventory(`refuse-${name}`, body), '--tags', 'proxmox']);
    assert.is.not(r.code, 0, `${name}: ${r.out}`);
    assert.match(r.out, re, name);
    assert.match(r.out, /nothing was changed \(phoenix never destroys a guest\)/, name);
    assert.equal(requestsSince(o).filter((q) => q.method !== 'GET'), [], `${name}: only GETs`);
    assert.equal(await config('lxc', 101), before, `${name}: lxc101 untouched`);
  }
});

E('a task that fails in Proxmox (unknown storage) fails the run with the task log', async () => {
  const inv = inventory(
    'badstorage',
    `inv.hosts.lxc105 = { address: '192.168.201.205', user: 'root', key: inv.hosts.lxc101!.key, groups: [], vars: { guestId: 105, guest: { ...lxcDefaults({ domain: 'internal.thinkheads.ai', gateway: '192.168.201.1', bridge: 'vmbr0', prefix: 24, nameserver: '192.168.201.1', sshPublicKeys: g('lxc101').sshPublicKeys }, 'Bad-Storage', '192.168.201.205', { order: 20 }), rootfs: { storage: 'nosuchpool', sizeGb: 4 } } } as any };`,
  );
  const r = await phoenix(['--inventory', inv, '--tags', 'proxmox']);
  assert.is.not(r.code, 0, r.out);
  assert.match(r.out, /create lxc 105 \(lxc105\) failed: task UPID:[^ ]+ ended with "storage 'nosuchpool' does not exist"; its log ends:/);
  assert.match(r.out, /TASK ERROR: storage 'nosuchpool' does not exist/);
  const c = client();
  const res = await c.send<{ vmid: number }[]>(req.resources());
  c.close();
  assert.not.ok(res.some((x) => x.vmid === 105), 'no guest 105 was left');
});

E('a digest mismatch (the config changed between read and write) is refused, nothing written', async () => {
  // The run and a concurrent edit race on purpose: the edit lands between phoenix's GET and its PUT.
  const { run } = await import('../../runner/cli.ts');
  const { playbook, play } = await import('../../runner/dsl.ts');
  const { proxmox } = await import('../../roles/proxmox/index.ts');
  const { labInventory } = await import('../../lab/inventory.ts');
  const inv = labInventory();
  const h = inv.hosts.lxc102!;
  inv.hosts.lxc102 = { ...h, vars: { ...h.vars, guest: { ...(h.vars as any).guest, memory: 1280 } } as any };
  const proto = PveClient.prototype as unknown as { send: (q: ReturnType<typeof req.config>) => Promise<unknown> };
  const orig = proto.send;
  let edited = false;
  proto.send = async function (this: PveClient, q) {
    if (q.method === 'PUT' && q.path.endsWith('/config') && !edited) {
      edited = true;
      const other = client();
      const cur = await other.send<Record<string, unknown>>(req.config(NODE, 'lxc', 102));
      // Someone else's edit (a key phoenix does not manage), with the right digest.
      await orig.call(other, req.putConfig(NODE, 'lxc', 102, { description: `${cur.description ?? ''}edited by someone else\n` }, String(cur.digest)));
      other.close();
    }
    return orig.call(this, q);
  };
  const chunks: string[] = [];
  try {
    const r = await run(playbook('pve', [play({ name: 'proxmox', hosts: 'proxmox', roles: [proxmox as any] })]), { inventory: inv, plain: true, out: { write: (s) => void chunks.push(s) } });
    assert.is.not(r.exitCode, 0);
  } finally {
    proto.send = orig;
  }
  const out = chunks.join('');
  transcripts.push(out);
  assert.ok(edited);
  assert.match(out, /lxc102 \(lxc 102\): its config changed after phoenix read it \(digest [0-9a-f]+ no longer matches\); nothing was written to it/);
  const cur = await config('lxc', 102);
  assert.is(Number(cur.memory), 1024, 'memory not written');
  // Undo the other edit.
  const c = client();
  await c.send(req.putConfig(NODE, 'lxc', 102, { description: String(cur.description).replace('edited by someone else\n', '') }, String(cur.digest)));
  c.close();
});

E('a new LXC 104 and VM 1003: created, started in startup order, host keys via the hypervisor, a small role runs on them', async () => {
  const kh = join(WORK, 'known_hosts');
  copyFileSync(lab.knownHosts, kh);
  const newGuests = (name: string, lxcExtra: string) =>
    inventory(
      name,
      `inv.knownHosts = ${JSON.stringify(kh)};
const o = { domain: 'internal.thinkheads.ai', gateway: '192.168.201.1', bridge: 'vmbr0', prefix: 24, nameserver: '192.168.201.1', sshPublicKeys: g('lxc101').sshPublicKeys };
inv.groups = { ...inv.groups, pvetest: {} };
// The VM starts first (order 8), then the container (order 9): order, not vmid or kind.
inv.hosts.lxc104 = { address: '192.168.201.204', user: 'root', key: inv.hosts.lxc101!.key, groups: ['pvetest'], vars: { guestId: 104, guest: lxcDefaults(o, 'Test-104', '192.168.201.204', { order: 9 }, { memory: 512, ${lxcExtra} }) } as any };
inv.hosts.vm1003 = { address: '192.168.201.203', user: 'phoenix', become: true, key: inv.hosts.lxc101!.key, groups: ['pvetest'], vars: { guestId: 1003, guest: vmDefaults(o, 'Test-1003', '192.168.201.203', { order: 8 }, { memory: 1024, disk: { key: 'scsi0', sizeGb: 8 } }) } as any };`,
    );
  const inv = newGuests('new-guests', '');
  const pb = join(WORK, 'new-guests-play.ts');
  writeFileSync(
    pb,
    `import { isMain, main, play, playbook, role, task, copy } from '../../runner/index.ts';
import proxmox from '../../roles/proxmox/index.ts';
const marker = role({ name: 'marker', tasks: [task({ name: 'marker file', do: (env) => copy({ dest: '/etc/phoenix-e2e-marker', content: 'configured by phoenix on ' + env.host.name + '\\n', mode: '0644' }) })] });
const pb = playbook('pve-new', [play({ name: 'proxmox', hosts: 'proxmox', roles: [proxmox] }), play({ name: 'marker', hosts: 'pvetest', roles: [marker as any] })]);
export default pb;
if (isMain(import.meta.url)) await main(pb);
`,
  );
  const cleanup = async () => {
    const c = client();
    for (const [kind, vmid] of [['lxc', 104], ['qemu', 1003]] as const) {
      const res = await c.send<{ vmid: number }[]>(req.resources());
      if (!res.some((x) => x.vmid === vmid)) continue;
      const upid = await c.send<string>({ method: 'DELETE' as never, path: `/nodes/{node}/${kind}/{vmid}`, pathParams: { node: NODE, vmid }, params: {} });
      await c.waitTask(NODE, upid, `remove ${vmid}`);
    }
    c.close();
  };
  try {
    await cleanup();
    const o = logSize();
    const check = await phoenix(['--inventory', inv, '--check', '--diff', '--limit', 'proxmox'], pb);
    assert.match(check.out, /create lxc 104 from local:vztmpl\/debian-12-standard_12\.7-1_amd64\.tar\.zst/);
    assert.match(check.out, /create vm 1003 as a full clone of template 9000/);
    assert.equal(requestsSince(o).filter((q) => q.method !== 'GET'), [], 'check: only GETs');

    const o2 = logSize();
    const r = await phoenix(['--inventory', inv, '--diff'], pb);
    assert.is(r.code, 0, r.out);
    const writes = requestsSince(o2).filter((q) => q.method !== 'GET').map((q) => `${q.method} ${q.path.replace('/nodes/phoenix-lab', '')}`);
    assert.ok(writes.includes('POST /lxc'), writes.join('\n'));
    assert.ok(writes.includes('POST /qemu/9000/clone'), writes.join('\n'));
    assert.ok(writes.includes('PUT /qemu/1003/config'), writes.join('\n'));
    assert.ok(writes.includes('PUT /qemu/1003/resize'), writes.join('\n'));
    assert.ok(writes.indexOf('POST /qemu/1003/status/start') < writes.indexOf('POST /lxc/104/status/start'), `startup order: ${writes.join(', ')}`);
    assert.match(r.out, /lxc104: host key ssh-ed25519 learned through the hypervisor/);
    assert.match(r.out, /vm1003: host key ssh-ed25519 learned through the hypervisor/);
    // The keys in known_hosts are the guests' own (read here with docker, independently).
    for (const [h, ctr, addr] of [['lxc104', 'pve-ct-104', '192.168.201.204'], ['vm1003', 'pve-vm-1003', '192.168.201.203']]) {
      const key = docker('exec', ctr, 'cat', '/etc/ssh/ssh_host_ed25519_key.pub').split(' ').slice(0, 2).join(' ');
      const found = execFileSync('ssh-keygen', ['-F', addr, '-f', kh], { encoding: 'utf8' });
      assert.ok(found.includes(key.split(' ')[1]!), `${h}: known_hosts has its key`);
      const user = h === 'lxc104' ? 'root' : 'phoenix';
      const marker = execFileSync('ssh', ['-i', lab.key, '-o', `UserKnownHostsFile=${kh}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', `${user}@${addr}`, 'cat /etc/phoenix-e2e-marker'], { encoding: 'utf8' });
      assert.is(marker, `configured by phoenix on ${h}\n`);
    }
    assert.is(docker('inspect', '-f', '{{.HostConfig.Memory}}', 'pve-vm-1003'), String(1024 * 1024 * 1024));
    const again = await phoenix(['--inventory', inv], pb);
    assert.is(again.code, 0, again.out);
    assert.is(proxmoxChanged(again), 0, again.out);
    assert.is(again.json?.recap.lxc104?.changed, 0, again.out);

    // A change Proxmox applies only at the next start (a running container's features): written
    // once, reported as pending on every run, the guest restarted only once the inventory allows it.
    const features = newGuests('new-guests-features', `features: { nesting: true, keyctl: true }`);
    const w = await phoenix(['--inventory', features, '--limit', 'proxmox'], pb);
    assert.is(w.code, 0, w.out);
    assert.match(w.out, /lxc104: features\.keyctl: 0 → 1/);
    assert.match(w.out, /lxc104: features pending until the guest restarts \(set guest\.allowRestart to let phoenix restart it\)/);
    assert.is((await config('lxc', 104)).features, 'nesting=1', 'not applied while running');
    const w2 = await phoenix(['--inventory', features, '--limit', 'proxmox'], pb);
    assert.is(proxmoxChanged(w2), 0, w2.out);
    assert.match(w2.out, /lxc104: features pending until the guest restarts/);
    const started = docker('inspect', '-f', '{{.State.StartedAt}}', 'pve-ct-104');
    const allow = newGuests('new-guests-restart', `features: { nesting: true, keyctl: true }, allowRestart: true`);
    const rs = await phoenix(['--inventory', allow], pb);
    assert.is(rs.code, 0, rs.out);
    assert.match(rs.out, /lxc104: restarted to apply features/);
    assert.is.not(docker('inspect', '-f', '{{.State.StartedAt}}', 'pve-ct-104'), started, 'the container was restarted');
    assert.is((await config('lxc', 104)).features, 'nesting=1,keyctl=1');
    const rs2 = await phoenix(['--inventory', allow], pb);
    assert.is(proxmoxChanged(rs2), 0, rs2.out);
    assert.not.match(rs2.out, /pending/);
  } finally {
    await cleanup();
  }
  assert.not.ok(docker('ps', '-a', '--format', '{{.Names}}').split('\n').some((n) => n === 'pve-ct-104' || n === 'pve-vm-1003'), 'removed');
});

E('the API token never shows in output, --json, --diff or a process list', () => {
  assert.ok(transcripts.length > 10);
  assert.ok(psSamples.length > 0);
  for (const t of transcripts) assert.not.ok(t.includes(TOKEN), 'token in a transcript');
  for (const p of psSamples) assert.not.ok(p.includes(TOKEN), 'token in a process list');
});

E.after(() => rmSync(WORK, { recursive: true, force: true }));

E.run();
