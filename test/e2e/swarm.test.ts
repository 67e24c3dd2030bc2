// The swarm and its stacks in the lab (issue 8, acceptance 1, 3, 4, 5, 6 for site.ts): from a
// fresh swarm state on vm1001/vm1002, --check changes nothing (swarm state included); the real
// run forms the swarm (vm1001 manager, vm1002 worker, both Ready) and runs Portainer and Qdrant
// where they are placed; a second run changes nothing; --tags qdrant lists and touches only the
// Qdrant stack and collections; a Qdrant setting changed in the inventory shows as a compose
// diff and redeploys only qdrant_service, keeping a collection's points; a worker already in
// another swarm fails naming both swarm IDs; the Docker TLS API refuses a client without a
// certificate; Traefik's swarm provider (the lab's stand-in on lxc102) connects to it over
// mutual TLS with the files phoenix wrote and exposes only labelled services. Test setup resets the VMs' swarm with `docker swarm leave --force` (the roles never do).
// The stacks have their default owner here, Portainer (a one-off Portainer creates its own stack
// on the fresh swarm, then every stack goes through its API); the 'docker' owner and the
// migration between them are stack-owners.test.ts's.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type RunResult } from '../../runner/index.ts';
import { labInventory, labSecretFile } from '../../lab/inventory.ts';
import { site } from '../../playbooks/site.ts';
import { curl, DOMAIN, onGuests, quiet, retryRead, SNAPSHOT, labWith } from './helpers.ts';

const E = suite('swarm');
const VMS = ['vm1001', 'vm1002'];
const LIMIT = VMS;
const TAGS = ['swarm', 'portainer', 'qdrant'];
const SECRETS = ['qdrant-api-key', 'portainer-admin-password'].map((f) => readFileSync(labSecretFile(f), 'utf8').trim());

const tasksWith = (r: RunResult, status: string) =>
  r.plays.flatMap((p) => Object.values(p.hosts).flatMap((h) => h.tasks.filter((t) => t.status === status).map((t) => `${h.host}: ${t.task}`)));
const errors = (r: RunResult) => r.plays.flatMap((p) => Object.values(p.hosts).flatMap((h) => h.tasks.filter((t) => t.error).map((t) => `${h.host}: ${t.task}: ${t.error!.message}`)));

async function on(guest: string, cmd: string): Promise<string> {
  return (await onGuests(guest, cmd))[guest]!;
}

/** Test setup only: both VMs out of any swarm, the stacks' containers, volumes and records gone. */
const RESET = [
  // (a worker whose manager went away can time out leaving, with dockerd's swarm agent stuck
  // until dockerd restarts: then restart it and leave again)
  'for i in 1 2 3; do [ "$(docker info --format \'{{.Swarm.LocalNodeState}}\')" = inactive ] && break; docker swarm leave --force >/dev/null 2>&1 || systemctl restart docker; done',
  'end=$(( $(date +%s) + 60 ))',
  'while ids=$(docker ps -aq --filter label=com.docker.swarm.service.id) && [ -n "$ids" ]; do docker rm -f $ids >/dev/null 2>&1; [ "$(date +%s)" -ge "$end" ] && break; sleep 0.3; done',
  'docker volume rm qdrant_storage portainer_data >/dev/null 2>&1 || true',
  'rm -rf /etc/phoenix/stacks',
  "docker info --format '{{.Swarm.LocalNodeState}}'",
].join('\n');

/** Everything a run may change on a VM, docker state included. */
// helpers.SNAPSHOT without its list of running units (timers such as certbot's start units on their own).
const FILES = SNAPSHOT.split('; systemctl list-units')[0]!.replace(/; dpkg-query[^;]*$/, '');
const STATE =
  FILES +
  "; dpkg-query -W -f='${Package} ${Status}\\n' | sha256sum; systemctl is-active docker; docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.NodeID}} {{.Swarm.ControlAvailable}}'; " +
  "docker network ls --format '{{.Name}} {{.Driver}}' | sort; docker volume ls -q | sort; docker ps -a --format '{{.Names}} {{.Image}}' | sort; " +
  '(docker node ls -q; docker service ls -q; docker secret ls -q) 2>/dev/null | sort; ls -la /etc/phoenix/stacks 2>&1';

const snapshot = () => onGuests(VMS, STATE);

const site2 = (o: Parameters<typeof run>[1] = {}) => {
  const q = quiet();
  return run(site, { inventory: labInventory(), tags: TAGS, limit: LIMIT, out: q.out, ...o }).then((r) => ({ r, text: q.text() }));
};

E('--check on a fresh swarm state changes nothing on either VM (swarm state, services, secrets, files)', async () => {
  // Setup here, not in a before hook (uvu does not show a hook's error): the worker first,
  // while its manager still answers; then the manager.
  for (const vm of ['vm1002', 'vm1001']) assert.is((await on(vm, RESET)).trim(), 'inactive', `${vm} left its swarm`);
  const before = await snapshot();
  const { r, text } = await site2({ check: true, diff: true });
  assert.is(r.exitCode, 0, text);
  assert.ok(tasksWith(r, 'changed').includes('vm1001: swarm initialized on the manager'), text);
  assert.ok(tasksWith(r, 'changed').includes('vm1002: swarm joined by the worker'), text);
  assert.equal(await snapshot(), before);
});

/** Samples every process's argument list on the VMs until stopped (test instrumentation). */
const SAMPLER = `rm -f /tmp/phx-argv.log; nohup sh -c 'while [ ! -e /tmp/phx-argv.stop ]; do cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\\0" "\\n" >> /tmp/phx-argv.log; done' >/dev/null 2>&1 &`;
/** How many sampled lines contain any of the values (given in a heredoc: never on an argument list). */
const sampledHits = (values: string[]) =>
  onGuests(VMS, `touch /tmp/phx-argv.stop; sleep 1; rm -f /tmp/phx-argv.stop; wc -l < /tmp/phx-argv.log; grep -c -F -f - /tmp/phx-argv.log <<'EOF' || true\n${values.join('\n')}\nEOF\nrm -f /tmp/phx-argv.log`);

E('site forms the swarm: vm1001 manager, vm1002 worker, both Ready; stacks run where placed; no secret shown or on an argument list', async () => {
  await onGuests(VMS, 'rm -f /tmp/phx-argv.stop; ' + SAMPLER);
  const json = join(tmpdir(), `phx-swarm-${process.pid}.json`);
  const { r, text } = await site2({ json, diff: true });
  const token = (await on('vm1001', 'docker swarm join-token -q worker')).trim();
  const hits = await sampledHits([...SECRETS, token]);
  const report = readFileSync(json, 'utf8');
  rmSync(json, { force: true });
  assert.is(r.exitCode, 0, `${text}\n${errors(r).join('\n')}`);
  assert.match(token, /^SWMTKN-/);
  for (const vm of VMS) {
    const [lines, found] = hits[vm]!.trim().split('\n');
    assert.ok(Number(lines) > 100, `${vm}: the sampler saw the processes (${lines} lines)`);
    assert.is(found, '0', `${vm}: a secret or the join token was on a process argument list`);
  }
  for (const s of [...SECRETS, token]) {
    assert.not.ok(text.includes(s), 'a secret in the run output (--diff)');
    assert.not.ok(report.includes(s), 'a secret in the --json report');
  }
  const nodes = (await on('vm1001', "docker node ls --format '{{.Hostname}} {{.Status}} {{.Availability}} {{.ManagerStatus}}' | sort")).trim().split('\n').map((l) => l.trimEnd());
  assert.equal(nodes, ['vm1001 Ready Active Leader', 'vm1002 Ready Active']);
  const where = (svc: string) => on('vm1001', `docker service ps ${svc} --filter desired-state=running --format '{{.Node}} {{.CurrentState}}'`);
  assert.match(await where('qdrant_service_qdrant'), /^vm1002 Running/);
  assert.match(await where('portainer_service_portainer'), /^vm1001 Running/);
  const agents = (await where('portainer_service_agent')).trim().split('\n').map((l) => l.split(' ')[0]).sort();
  assert.equal(agents, ['vm1001', 'vm1002']);
  // Node labels from the inventory, the overlay network attachable.
  assert.match(await on('vm1001', "docker node inspect vm1002 --format '{{json .Spec.Labels}}'"), /"phoenix.qdrant":"true"/);
  assert.is((await on('vm1001', "docker network inspect traefik-public --format '{{.Driver}} {{.Attachable}} {{.Scope}}'")).trim(), 'overlay true swarm');
  // The products' own health, from the manager: Qdrant's /readyz, Portainer over verified TLS.
  assert.match(await on('vm1001', `curl -sS --max-time 5 https://vm1002.${DOMAIN}:6333/readyz`), /check passed/);
  assert.match(await on('vm1001', `curl -sS --max-time 5 https://vm1001.${DOMAIN}:9443/api/system/status`), /"Version"/);
  // No secret in the output, the compose files kept on the manager, or the service specs.
  const specs = await on('vm1001', 'cat /etc/phoenix/stacks/*.yml; docker service inspect $(docker service ls -q)');
  for (const s of SECRETS) assert.not.ok(specs.includes(s), 'a secret in a compose file or service spec');
});

E('through the gateway (nginx on lxc101 -> Traefik on lxc102 -> the VM), TLS verified: qdrant /readyz, portainer /api/system/status', () => {
  const q = curl(`https://qdrant.${DOMAIN}/readyz`, 'lxc101', ['-D', '-']);
  assert.is(q.code, 0, q.stderr);
  assert.is(q.status, 200, q.body);
  assert.match(q.body, /X-Phoenix-Standin: traefik-standin/i);
  assert.match(q.body, /X-Phoenix-Standin: qdrant/i);
  assert.match(q.body, /readyz check passed/);
  const p = curl(`https://portainer.${DOMAIN}/api/system/status`, 'lxc101');
  assert.is(p.status, 200, p.body);
  assert.match(p.body, /"InstanceID":"portainer-standin"/);
});

E('a second run changes nothing', async () => {
  const { r, text } = await site2();
  assert.is(r.exitCode, 0, text);
  assert.equal(tasksWith(r, 'changed'), []);
});

E('--check on the formed swarm changes nothing and reports nothing to do', async () => {
  const before = await snapshot();
  const { r, text } = await site2({ check: true });
  assert.is(r.exitCode, 0, text);
  assert.equal([...tasksWith(r, 'changed'), ...tasksWith(r, 'unknown')], []);
  assert.equal(await snapshot(), before);
});

E('--tags qdrant --list-tasks lists exactly the Qdrant stack and collection tasks; running it touches nothing else', async () => {
  const q = quiet();
  await run(site, { inventory: labInventory(), tags: ['qdrant'], listTasks: true, out: q.out });
  const lines = q.text().trim().split('\n');
  assert.equal(lines, ['play: qdrant', '  qdrant : qdrant stack    TAGS: [qdrant]', '  qdrant : qdrant collections    TAGS: [qdrant]']);
  const r = await run(site, { inventory: labInventory(), tags: ['qdrant'], out: quiet().out });
  assert.is(r.exitCode, 0);
  const ran = r.plays.flatMap((p) => Object.values(p.hosts).flatMap((h) => h.tasks.map((t) => `${p.play} ${h.host} ${t.task}`)));
  assert.equal(ran, ['qdrant vm1001 qdrant stack', 'qdrant vm1001 qdrant collections']);
});

/** Qdrant REST from the manager; the key goes to curl on stdin (`-H @-`), printf being a shell builtin. */
const qdrant = (method: string, path: string, body?: unknown) =>
  on(
    'vm1001',
    `K=$(cat <<'EOF'\n${SECRETS[0]}\nEOF\n)\nprintf 'api-key: %s\\n' "$K" | curl -sS --max-time 10 -H @- -H 'Content-Type: application/json' -X ${method} ${body ? `--data-raw '${JSON.stringify(body)}' ` : ''}https://vm1002.${DOMAIN}:6333${path}`,
  );

E('a Qdrant setting changed in the inventory: --check --diff shows the compose diff; the run redeploys only qdrant_service; points survive', async () => {
  // A collection the role created, with points in it.
  assert.match(await qdrant('GET', '/collections/phoenix_docs'), /"status":"ok"/);
  const points = [1, 2, 3].map((id) => ({ id, vector: [0.1 * id, 0.2, 0.3, 0.4], payload: { n: id } }));
  assert.match(await qdrant('PUT', '/collections/phoenix_docs/points?wait=true', { points }), /"completed"/);
  const count = () => retryRead(async () => JSON.parse(await qdrant('POST', '/collections/phoenix_docs/points/count', { exact: true })).result.count as number);
  assert.is(await count(), 3);
  const versions = async () => (await on('vm1001', "docker service inspect --format '{{.Spec.Name}} {{.Version.Index}}' $(docker service ls -q) | sort")).trim();
  const before = await versions();

  const inv = labWith((v) => (v.qdrant.logLevel = 'DEBUG'));
  const q = quiet();
  const check = await run(site, { inventory: inv, tags: ['portainer', 'qdrant'], check: true, diff: true, out: q.out });
  assert.is(check.exitCode, 0, q.text());
  assert.match(q.text(), /--- portainer:qdrant_service\/docker-compose\.yml/);
  assert.match(q.text(), /^-\s+QDRANT__LOG_LEVEL: INFO$/m);
  assert.match(q.text(), /^\+\s+QDRANT__LOG_LEVEL: DEBUG$/m);
  assert.equal(tasksWith(check, 'changed'), ['vm1001: qdrant stack']);
  assert.is(await versions(), before, '--check redeployed something');

  const real = await run(site, { inventory: inv, tags: ['portainer', 'qdrant'], out: quiet().out });
  assert.is(real.exitCode, 0);
  assert.equal(tasksWith(real, 'changed'), ['vm1001: qdrant stack']);
  const after = (await versions()).split('\n');
  const was = new Map(before.split('\n').map((l) => l.split(' ') as [string, string]));
  for (const line of after) {
    const [name, v] = line.split(' ');
    if (name === 'qdrant_service_qdrant') assert.is.not(v, was.get(name), 'qdrant_service was not redeployed');
    else assert.is(v, was.get(name), `${name} was redeployed`);
  }
  assert.match(await on('vm1001', "docker service inspect qdrant_service_qdrant --format '{{json .Spec.TaskTemplate.ContainerSpec.Env}}'"), /QDRANT__LOG_LEVEL=DEBUG/);
  assert.is(await count(), 3, 'the points survived the redeploy');

  // Back to the inventory as it is: redeployed once more, then nothing to do.
  assert.equal(tasksWith(await run(site, { inventory: labInventory(), tags: ['qdrant'], out: quiet().out }), 'changed'), ['vm1001: qdrant stack']);
  assert.is(await count(), 3);
});

E('a service changed by hand is drift: the next run deploys the stack again', async () => {
  await on('vm1001', 'docker service update --detach --env-add HAND=1 qdrant_service_qdrant >/dev/null');
  const q = quiet();
  const check = await run(site, { inventory: labInventory(), tags: ['qdrant'], check: true, out: q.out });
  assert.match(q.text(), /live services \(qdrant_service_qdrant: env/);
  assert.equal(tasksWith(check, 'changed'), ['vm1001: qdrant stack']);
  const r = await run(site, { inventory: labInventory(), tags: ['qdrant'], out: quiet().out });
  assert.equal(tasksWith(r, 'changed'), ['vm1001: qdrant stack']);
  assert.not.match(await on('vm1001', "docker service inspect qdrant_service_qdrant --format '{{json .Spec.TaskTemplate.ContainerSpec.Env}}'"), /HAND=1/);
});

E('a worker already in another swarm fails, naming both swarm IDs; nothing forces it out', async () => {
  const managerId = (await on('vm1001', "docker info --format '{{.Swarm.Cluster.ID}}'")).trim();
  const otherId = (await on('vm1002', "docker swarm leave --force >/dev/null 2>&1; docker swarm init --advertise-addr 192.168.201.102 >/dev/null && docker info --format '{{.Swarm.Cluster.ID}}'")).trim();
  assert.ok(otherId && managerId && otherId !== managerId);
  try {
    const { r, text } = await site2({ tags: ['swarm'] });
    assert.is(r.exitCode, 2, text);
    const msg = errors(r).join('\n');
    assert.match(msg, /vm1002: swarm joined by the worker: vm1002 is in another swarm/);
    assert.ok(msg.includes(otherId) && msg.includes(managerId), msg);
    // Still in its own swarm: phoenix did not make it leave.
    assert.is((await on('vm1002', "docker info --format '{{.Swarm.Cluster.ID}}'")).trim(), otherId);
  } finally {
    // Test cleanup: back into the lab's swarm (the stale node entry removed on the manager).
    await on('vm1002', 'docker swarm leave --force >/dev/null 2>&1 || true');
    await on('vm1001', "for n in $(docker node ls --format '{{.ID}} {{.Hostname}} {{.Status}}' | awk '$2==\"vm1002\" {print $1}'); do docker node rm --force $n >/dev/null 2>&1; done; true");
    const { r, text } = await site2();
    assert.is(r.exitCode, 0, `${text}\n${errors(r).join('\n')}`);
  }
});

E('a half-joined worker (LocalNodeState pending, ansible#57951) is reported, not skipped or forced out', async () => {
  // Docker's documentation example token: a join to an address nobody answers stays pending.
  const fake = 'SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx';
  const state = await on('vm1002', `docker swarm leave --force >/dev/null 2>&1; timeout 5 docker swarm join --token ${fake} 192.168.201.99:2377 >/dev/null 2>&1; docker info --format '{{.Swarm.LocalNodeState}}'`);
  assert.is(state.trim(), 'pending');
  try {
    const { r, text } = await site2({ tags: ['swarm'], limit: ['vm1002'] });
    assert.is(r.exitCode, 2, text);
    assert.match(errors(r).join('\n'), /vm1002: swarm joined by the worker: vm1002 is half-joined to a swarm \(LocalNodeState pending; joining via 192\.168\.201\.99:2377\)/);
    assert.is((await on('vm1002', "docker info --format '{{.Swarm.LocalNodeState}}'")).trim(), 'pending', 'phoenix left the node as it was');
  } finally {
    await on('vm1002', 'docker swarm leave --force >/dev/null 2>&1 || true');
    await on('vm1001', "for n in $(docker node ls --format '{{.ID}} {{.Hostname}} {{.Status}}' | awk '$2==\"vm1002\" && $3==\"Down\" {print $1}'); do docker node rm --force $n >/dev/null 2>&1; done; true");
    const { r, text } = await site2();
    assert.is(r.exitCode, 0, `${text}\n${errors(r).join('\n')}`);
  }
});

E("Docker's TLS API: a client without a certificate is refused; Traefik's client certificate is served", async () => {
  // The client certificate on lxc102 (the docker api client play; issued once, then ok).
  const c = await site2({ tags: ['docker-api'], limit: ['lxc102', 'vm1001'] });
  assert.is(c.r.exitCode, 0, c.text);
  const url = `https://vm1001.${DOMAIN}:2376/version`;
  const out = await on(
    'lxc102',
    `curl -sS --max-time 5 -o /dev/null -w 'anon=%{http_code}\\n' ${url} 2>&1; ` +
      `curl -sS --max-time 5 -o /dev/null -w 'client=%{http_code}\\n' --cert /etc/traefik/docker/cert.pem --key /etc/traefik/docker/key.pem ${url} 2>&1`,
  );
  assert.match(out, /anon=000/);
  assert.match(out, /alert bad certificate|certificate required/i);
  assert.match(out, /client=200/);
});

interface StandinApi {
  routers: { name: string; service: string }[];
  services: Record<string, string[]>;
  swarm?: { endpoint: string; connected: boolean; docker?: string; services: string[]; exposed: string[]; error?: string; polls: number };
}
/** Traefik's API on lxc102 (the stand-in's api@internal, through the dashboard router, from loopback). */
const traefikApi = async () => JSON.parse(await on('lxc102', 'curl -sS --max-time 5 http://127.0.0.1:8080/api')) as StandinApi;
/** Polls Traefik's API until `ok` holds (the lab's provider polls every 2 s), with a deadline. */
async function until(what: string, ok: (a: StandinApi) => boolean, seconds = 40): Promise<StandinApi> {
  const end = Date.now() + seconds * 1000;
  let a = await traefikApi();
  while (!ok(a)) {
    if (Date.now() > end) throw new Error(`Traefik's API on lxc102: ${what} not seen within ${seconds}s: ${JSON.stringify(a.swarm)}`);
    await new Promise((r) => setTimeout(r, 1000));
    a = await traefikApi();
  }
  return a;
}

E("Traefik's swarm provider (lab stand-in) reaches Docker's TLS API with the files phoenix wrote; only labelled services are exposed; a foreign client certificate is refused, and the next run repairs it", async () => {
  // Traefik's static config with the provider on (the traefik play), and its client certificate (above).
  const t = await site2({ tags: ['traefik', 'docker-api'], limit: ['lxc102', 'vm1001'] });
  assert.is(t.r.exitCode, 0, t.text);
  const yml = await on('lxc102', 'cat /etc/traefik/traefik.yml');
  assert.match(yml, new RegExp(`swarm:\\n\\s+endpoint: tcp://vm1001\\.${DOMAIN.replace(/\./g, '\\.')}:2376`));
  assert.match(yml, /exposedByDefault: false/);

  const docker = (await on('vm1001', "docker version -f '{{.Server.Version}}'")).trim();
  let a = await until('a connected provider that sees the stacks', (x) => !!x.swarm?.connected && x.swarm.services.includes('qdrant_service_qdrant'));
  assert.is(a.swarm!.endpoint, `tcp://vm1001.${DOMAIN}:2376`);
  assert.is(a.swarm!.docker, docker, "the provider talks to vm1001's dockerd");
  assert.ok(a.swarm!.services.includes('portainer_service_portainer'), JSON.stringify(a.swarm));
  assert.equal(a.swarm!.exposed, [], 'exposedByDefault: false, and the stacks carry no traefik.enable label');
  assert.not.ok(a.routers.some((r) => r.name.endsWith('@swarm')));

  // A service that opts in: a router and a server at its task's address on traefik-public.
  await on(
    'vm1001',
    "docker service rm phx-traefik-probe >/dev/null 2>&1; docker service create --detach --quiet --name phx-traefik-probe --network traefik-public --endpoint-mode dnsrr --constraint node.role==manager " +
      "--label traefik.enable=true --label 'traefik.http.routers.probe.rule=Host(`probe." + DOMAIN + "`)' --label traefik.http.routers.probe.entrypoints=websecure " +
      '--label traefik.http.routers.probe.tls=true --label traefik.http.services.probe.loadbalancer.server.port=9001 phoenix/portainer-agent-standin:lab >/dev/null',
  );
  try {
    a = await until('the labelled probe service as a router with a server', (x) => !!x.services['probe@swarm']?.length);
    const ip = (
      await on(
        'vm1001',
        "for i in $(seq 1 60); do t=$(docker service ps -q --filter desired-state=running phx-traefik-probe | head -1); [ -n \"$t\" ] && a=$(docker inspect -f '{{range .NetworksAttachments}}{{if eq .Network.Spec.Name \"traefik-public\"}}{{index .Addresses 0}}{{end}}{{end}}' $t) && [ -n \"$a\" ] && break; sleep 0.5; done; echo ${a%/*}",
      )
    ).trim();
    assert.ok(ip, 'the probe task has an address on traefik-public');
    assert.equal(a.swarm!.exposed, ['phx-traefik-probe']);
    assert.equal(a.services['probe@swarm'], [`http://${ip}:9001`]);
    assert.ok(a.routers.some((r) => r.name === 'probe@swarm' && r.service === 'probe@swarm'), JSON.stringify(a.routers));
  } finally {
    await on('vm1001', 'docker service rm phx-traefik-probe >/dev/null 2>&1; true');
  }
  await until('the probe gone again', (x) => !!x.swarm?.connected && !x.swarm.exposed.length && !x.services['probe@swarm']);

  // A client certificate not from step-ca (self-signed, same files): dockerd refuses the provider.
  // Like Traefik's, the provider reads the files when it connects: restart it to make it do so.
  await on(
    'lxc102',
    'cd /etc/traefik/docker && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=intruder -keyout key.pem.x -out cert.pem.x 2>/dev/null && ' +
      'chown root:traefik key.pem.x cert.pem.x && chmod 0640 key.pem.x cert.pem.x && mv -f key.pem.x key.pem && mv -f cert.pem.x cert.pem && systemctl restart traefik',
  );
  a = await until('the provider refused', (x) => x.swarm?.connected === false && !!x.swarm.error);
  assert.match(a.swarm!.error ?? '', /bad certificate|unknown certificate authority|certificate required/i, "dockerd's refusal");
  // phoenix signs a client certificate of the Docker API client CA again (the files no longer
  // check out); the provider, retrying with a backoff and reading the files again, connects.
  const fix = await site2({ tags: ['docker-api'], limit: ['lxc102', 'vm1001'] });
  assert.is(fix.r.exitCode, 0, fix.text);
  assert.ok(tasksWith(fix.r, 'changed').includes('lxc102: docker API client certificate'), fix.text);
  await until('the provider connected again', (x) => !!x.swarm?.connected, 90);
});

E.run();
