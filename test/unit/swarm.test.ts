import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRefusals, refusalsHere } from '../../roles/swarm/api.ts';
import { labelChanges, NO_DOCKER, NODES_PROBE, nodeByAddress, parseNodes, parseSwarmProbe, SWARM_PROBE } from '../../roles/swarm/state.ts';

const SEP = '--phoenix-swarm-cert--';
// Captured from the lab (docker.io 20.10): a worker, then its manager.
const worker =
  '{"NodeID":"j7o0z2tewc8w8yevh0w5a5mug","NodeAddr":"192.168.201.102","LocalNodeState":"active","ControlAvailable":false,"Error":"","RemoteManagers":[{"NodeID":"seqpdk3pkbel1wwx1v4vhge2g","Addr":"192.168.201.111:2377"}]}\n' +
  `${SEP}\nsubject=CN=j7o0z2tewc8w8yevh0w5a5mug,OU=swarm-worker,O=jgdve8559d51kf7r2d7ivustz\n`;
const manager =
  '{"NodeID":"seqpdk3pkbel1wwx1v4vhge2g","NodeAddr":"192.168.201.111","LocalNodeState":"active","ControlAvailable":true,"Error":"","RemoteManagers":[{"NodeID":"seqpdk3pkbel1wwx1v4vhge2g","Addr":"192.168.201.111:2377"}],"Nodes":2,"Managers":1,"Cluster":{"ID":"jgdve8559d51kf7r2d7ivustz"}}\n' +
  `${SEP}\nsubject=CN=seqpdk3pkbel1wwx1v4vhge2g,OU=swarm-manager,O=jgdve8559d51kf7r2d7ivustz\n`;

test('a worker: active, no control, its swarm ID from the node certificate (docker info does not show it)', () => {
  const s = parseSwarmProbe(worker, 'vm1002');
  assert.is(s.state, 'active');
  assert.is(s.controlAvailable, false);
  assert.is(s.clusterId, 'jgdve8559d51kf7r2d7ivustz');
  assert.is(s.nodeId, 'j7o0z2tewc8w8yevh0w5a5mug');
  assert.equal(s.remoteManagers, [{ nodeId: 'seqpdk3pkbel1wwx1v4vhge2g', addr: '192.168.201.111:2377' }]);
});

test("a worker's swarm ID from its node certificate's PEM (the probe reads the file; no openssl x509 on the host)", () => {
  // A certificate shaped like swarmkit's node certificate: CN node ID, OU role, O cluster ID.
  const dir = mkdtempSync(join(tmpdir(), 'phx-swarm-cert-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-keyout', join(dir, 'k'), '-out', join(dir, 'c'), '-subj', '/O=jgdve8559d51kf7r2d7ivustz/OU=swarm-worker/CN=j7o0z2tewc8w8yevh0w5a5mug'], { stdio: 'pipe' });
    const pem = readFileSync(join(dir, 'c'), 'utf8');
    const s = parseSwarmProbe(`${worker.split(SEP)[0]}${SEP}\n${pem}`, 'vm1002');
    assert.is(s.clusterId, 'jgdve8559d51kf7r2d7ivustz');
    assert.is(parseSwarmProbe(`${worker.split(SEP)[0]}${SEP}\n-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n`, 'vm1002').clusterId, undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.match(SWARM_PROBE, /cat \/var\/lib\/docker\/swarm\/certificates\/swarm-node\.crt/);
  assert.not.match(SWARM_PROBE, /openssl/);
});

test('a manager: Cluster.ID is the swarm ID', () => {
  const s = parseSwarmProbe(manager, 'vm1001');
  assert.is(s.controlAvailable, true);
  assert.is(s.clusterId, 'jgdve8559d51kf7r2d7ivustz');
});

test('a node in no swarm, and a half-joined one (ansible#57951) keep their state and error', () => {
  const inactive = parseSwarmProbe(`{"NodeID":"","NodeAddr":"","LocalNodeState":"inactive","ControlAvailable":false,"Error":"","RemoteManagers":null}\n${SEP}\n`, 'vm1002');
  assert.is(inactive.state, 'inactive');
  assert.is(inactive.clusterId, undefined);
  assert.equal(inactive.remoteManagers, []);
  const pending = parseSwarmProbe(
    `{"NodeID":"abc","NodeAddr":"192.168.201.102","LocalNodeState":"pending","ControlAvailable":false,"Error":"rpc error: code = Unavailable desc = connection error","RemoteManagers":null}\n${SEP}\n`,
    'vm1002',
  );
  assert.is(pending.state, 'pending');
  assert.match(pending.error, /connection error/);
});

test('unreadable output is an error naming the host', () => {
  assert.throws(() => parseSwarmProbe('Cannot connect to the Docker daemon\n', 'vm1002'), /vm1002: cannot read docker info's Swarm section/);
  assert.throws(() => parseSwarmProbe('{"LocalNodeState":"weird"}', 'vm1002'), /vm1002: unknown LocalNodeState "weird"/);
});

test('the probe is one shell script that reads the node certificate without failing when it is absent', () => {
  assert.match(SWARM_PROBE, /docker info --format '\{\{json \.Swarm\}\}'/);
  assert.match(SWARM_PROBE, /\[ -r \/var\/lib\/docker\/swarm\/certificates\/swarm-node\.crt \]/);
});

test('nodes: found by advertise address (Status.Addr or a manager\'s ManagerStatus.Addr); labels merged', () => {
  const nodes = parseNodes(
    [
      '{"ID":"m1","Description":{"Hostname":"vm1001"},"Spec":{"Role":"manager","Availability":"active","Labels":{"phoenix.portainer":"true"}},"Status":{"State":"ready","Addr":"0.0.0.0"},"ManagerStatus":{"Addr":"192.168.201.111:2377"}}',
      '{"ID":"w1","Description":{"Hostname":"vm1002"},"Spec":{"Role":"worker","Availability":"active","Labels":{}},"Status":{"State":"ready","Addr":"192.168.201.102"}}',
    ].join('\n'),
    'vm1001',
  );
  assert.is(nodeByAddress(nodes, '192.168.201.111')?.id, 'm1');
  assert.is(nodeByAddress(nodes, '192.168.201.102')?.id, 'w1');
  assert.is(nodeByAddress(nodes, '10.9.9.9'), undefined);
  // A node that left and joined again: the old entry is down, the new one ready.
  const rejoined = parseNodes(
    '{"ID":"old","Spec":{"Role":"worker","Availability":"active"},"Status":{"State":"down","Addr":"192.168.201.102"}}\n' +
      '{"ID":"new","Spec":{"Role":"worker","Availability":"active"},"Status":{"State":"ready","Addr":"192.168.201.102"}}',
    'vm1001',
  );
  assert.is(nodeByAddress(rejoined, '192.168.201.102')?.id, 'new');
  assert.equal(labelChanges(nodes[0].labels, { 'phoenix.portainer': 'true' }), []);
  assert.equal(labelChanges({ a: '1', keep: 'x' }, { a: '2', b: '3' }), ['a=2', 'b=3']);
});

test('the Engine API in one round trip: /info (its Swarm section) and /nodes (a JSON array), the CLI only without curl', () => {
  assert.match(SWARM_PROBE, /command -v docker .* \|\| \{ echo '--phoenix-no-docker--'; exit 0; \}/);
  assert.ok(SWARM_PROBE.includes("curl -sSf --unix-socket /var/run/docker.sock 'http://localhost/info'"));
  assert.ok(NODES_PROBE.includes("curl -sSf --unix-socket /var/run/docker.sock 'http://localhost/nodes'"));
  assert.is(NO_DOCKER, '--phoenix-no-docker--');
  const info = JSON.stringify({ ID: 'X', Containers: 0, Swarm: JSON.parse(manager.split('\n')[0]!) });
  const s = parseSwarmProbe(`${info}\n${SEP}\n`, 'vm1001');
  assert.is(s.state, 'active');
  assert.is(s.controlAvailable, true);
  assert.is(s.clusterId, 'jgdve8559d51kf7r2d7ivustz');
  const nodes = parseNodes(
    '[{"ID":"m1","Spec":{"Role":"manager","Availability":"active"},"Status":{"State":"ready","Addr":"0.0.0.0"},"ManagerStatus":{"Addr":"192.168.201.111:2377"}},' +
      '{"ID":"w1","Spec":{"Role":"worker","Availability":"active","Labels":{"a":"1"}},"Status":{"State":"ready","Addr":"192.168.201.102"}}]\n',
    'vm1001',
  );
  assert.equal(nodes.map((n) => [n.id, n.role, n.labels]), [['m1', 'manager', {}], ['w1', 'worker', { a: '1' }]]);
  assert.throws(() => parseNodes('[{"ID":', 'vm1001'), /vm1001: cannot read the swarm's node list/);
});

test('stale node entries: a Down entry is stale only when the same hostname has a Ready one; others wait; managers never', async () => {
  const { staleEntries } = await import('../../roles/swarm/state.ts');
  const n = (id: string, hostname: string, state: string, role = 'worker') => JSON.stringify({ ID: id, Description: { Hostname: hostname }, Spec: { Role: role, Availability: 'active' }, Status: { State: state, Addr: '192.168.201.102' } });
  const nodes = parseNodes(
    [n('m1', 'vm1001', 'ready', 'manager'), n('old', 'vm1002', 'down'), n('new', 'vm1002', 'ready'), n('gone', 'vm1003', 'down'), n('leaving', 'vm1002', 'unknown'), n('m2', 'vm1001', 'down', 'manager')].join('\n'),
    'vm1001',
  );
  const r = staleEntries(nodes);
  assert.equal(r.stale.map((x) => x.id), ['old']);
  assert.equal(r.leaving.map((x) => x.id), ['leaving']);
  // A node that is merely down (no Ready entry of its hostname) is never stale.
  assert.equal(staleEntries(parseNodes(n('only', 'vm1002', 'down'), 'vm1001')).stale, []);
});

test("the docker API self-test's refusals: run at once on the host, each one's stdout, stderr and status apart, in order", () => {
  const dir = mkdtempSync(join(tmpdir(), 'phx-refusals-'));
  try {
    const flag = join(dir, 'second-ran');
    // The first waits (bounded) for a file the second makes: it sees it only if both run at once.
    const first = `i=0; while [ ! -e ${flag} ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; if [ -e ${flag} ]; then printf 000; else printf sequential; fi; printf 'curl: (56) alert\\ncertificate required\\n' >&2; exit 56`;
    const second = `touch ${flag}`;
    const third = 'echo absent';
    const mark = 'phx-0123456789ab';
    const out = execFileSync('/bin/sh', ['-c', refusalsHere(mark, [first, second, third])], { encoding: 'utf8' });
    const [a, b, c] = parseRefusals(mark, { code: 0, stdout: out, stderr: '' }, 3);
    assert.equal(a, { code: 56, stdout: '000', stderr: 'curl: (56) alert\ncertificate required\n' });
    assert.equal(b, { code: 0, stdout: '', stderr: '' });
    assert.is(c!.stdout.trim(), 'absent');
    assert.is(c!.code, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the self-test says so when its checks said nothing it can read', () => {
  // mktemp failed: the script said why on stderr, and exited 1.
  assert.throws(() => parseRefusals('phx-0123456789ab', { code: 1, stdout: '', stderr: 'mktemp: failed to create directory via template: No space left on device\n' }, 2), /could not read its checks' output \(exit 1\): mktemp: failed to create directory/);
});

test("the swarm's node tasks list the nodes with one Engine API read on a manager; /info only to say why /nodes did not answer", async () => {
  const { swarmCluster } = await import('../../roles/swarm/index.ts');
  const dir = mkdtempSync(join(tmpdir(), 'phx-swarm-nodes-'));
  try {
    // Stand-ins for curl and docker on PATH: curl logs each URL it is asked for and answers from files.
    const log = join(dir, 'urls');
    writeFileSync(join(dir, 'docker'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    writeFileSync(
      join(dir, 'curl'),
      `#!/bin/sh\nfor a; do u=$a; done\necho "$u" >> ${log}\ncase $u in\n*/nodes) [ -e ${dir}/no-manager ] && { echo 'curl: (22) The requested URL returned error: 503' >&2; exit 22; }; cat ${dir}/nodes.json;;\n*/info) cat ${dir}/info.json;;\nesac\n`,
      { mode: 0o755 },
    );
    const node = (id: string, addr: string, role: string, labels: Record<string, string>) => ({ ID: id, Description: { Hostname: id }, Spec: { Role: role, Availability: 'active', Labels: labels }, Status: { State: 'ready', Addr: addr } });
    writeFileSync(join(dir, 'nodes.json'), JSON.stringify([node('vm1001', '192.168.201.111', 'manager', {}), node('vm1002', '192.168.201.102', 'worker', { 'phoenix.qdrant': 'true' })]));
    const vars = { swarm: { manager: 'vm1001', advertise: { vm1001: '192.168.201.111', vm1002: '192.168.201.102' }, nodeLabels: { vm1002: { 'phoenix.qdrant': 'true' } } } };
    const probe = async (cmd: string) => {
      const x = spawnSync('/bin/sh', ['-c', cmd], { encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env.PATH}` }, stdio: ['ignore', 'pipe', 'pipe'] });
      return { code: x.status ?? 1, stdout: x.stdout, stderr: x.stderr };
    };
    const ctx = { host: { name: 'vm1001', address: '192.168.201.111' }, check: false, probe, run: probe, change: async (plan: unknown) => plan } as any;
    const act = async (name: string) => {
      const t = swarmCluster.tasks.find((x) => x.name === name)!;
      const a = typeof t.do === 'function' ? await t.do({ vars } as any) : t.do;
      return a.run(ctx);
    };
    const urls = () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);

    for (const name of ['nodes ready', 'stale node entries removed', 'node labels']) {
      rmSync(log, { force: true });
      const r = await act(name);
      assert.is(r.changed, false, `${name}: ${JSON.stringify(r)}`);
      assert.equal(urls(), ['http://localhost/nodes'], `${name} read only /nodes`);
    }

    // Not a manager (a worker, or no swarm): /nodes refuses; /info says what the node is.
    writeFileSync(join(dir, 'no-manager'), '');
    writeFileSync(join(dir, 'info.json'), '{"NodeID":"","NodeAddr":"","LocalNodeState":"inactive","ControlAvailable":false,"Error":"","RemoteManagers":null}');
    rmSync(log, { force: true });
    const notManager = await act('node labels').then(() => undefined, (x: Error) => x);
    assert.match(notManager?.message ?? 'no error', /vm1001: not a swarm manager \(LocalNodeState inactive\)/);
    assert.equal(urls(), ['http://localhost/nodes', 'http://localhost/info']);
    // An active manager whose /nodes fails (no quorum): the list's own error, with curl's stderr.
    writeFileSync(join(dir, 'info.json'), '{"NodeID":"m","NodeAddr":"192.168.201.111","LocalNodeState":"active","ControlAvailable":true,"Error":"","RemoteManagers":[],"Cluster":{"ID":"c1"}}');
    const e = await act('node labels').then(() => undefined, (x: Error & { detail?: { stderr?: string } }) => x);
    assert.match(e?.message ?? 'no error', /vm1001: cannot list the swarm's nodes/);
    assert.match(e!.detail!.stderr!, /returned error: 503/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
