// The two-node Docker Swarm (docs/ARCHITECTURE.md): the engine on both VMs, `docker swarm init`
// on the manager with the inventory's advertise address, the worker joined with the worker
// token read from the manager at run time (a Secret: sent to the worker's Docker Engine API
// over its unix socket on stdin, never on an argument list), node labels from the inventory,
// and the attachable overlay network traefik-public.
//
// Three roles, run as three plays in site.ts (manager, then workers, then the cluster-wide
// tasks on the manager), so a worker never races the manager's init:
//   swarmNode     engine installed and running, this node in the swarm (init or join)
//   swarmCluster  node labels, the overlay network, every node Ready
// A node already in this swarm is ok; a node in another swarm is an error naming both swarm
// IDs; a half-joined node (LocalNodeState pending/error) is reported. Phoenix never runs
// `docker swarm leave --force`: taking a node out of a swarm is the operator's decision.
import { apt, command, copy, getUrl, output, role, shQuote, systemd, task, Secret, TaskError, type Action, type ActionContext, type ActionResult } from '../../runner/index.ts';
import type { BaseVars } from '../base-vars.ts';
import { labelChanges, nodeByAddress, NO_DOCKER, NODES_PROBE, parseNodes, parseSwarmProbe, staleEntries, SWARM_PROBE, type NodeInfo, type SwarmState } from './state.ts';
import { swarmVarsSchema, type SwarmVars } from './vars.ts';

/** What the swarm roles read: their own vars and the base. */
export type SwarmRoleVars = SwarmVars & BaseVars;
type V = SwarmRoleVars;
type Run = ActionContext['run'];

const isManager = (host: { name: string }, v: V) => host.name === v.swarm.manager;

/** The swarm state of a node (read-only; runs in check mode too). Undefined when docker is absent. */
export async function swarmState(run: Run, where: string): Promise<SwarmState | undefined> {
  const r = await run(SWARM_PROBE);
  if (r.code === 0 && r.stdout.trim() === NO_DOCKER) return undefined;
  if (r.code !== 0) throw new TaskError(`${where}: docker info failed (is dockerd running?)`, { command: 'GET /info on /var/run/docker.sock', stderr: r.stderr, code: r.code });
  try {
    return parseSwarmProbe(r.stdout, where);
  } catch (e) {
    throw new TaskError((e as Error).message);
  }
}

function halfJoined(host: string, s: SwarmState): TaskError {
  return new TaskError(
    `${host} is half-joined to a swarm (LocalNodeState ${s.state}${s.error ? `: ${s.error}` : ''}` +
      `${s.remoteManagers.length ? `; joining via ${s.remoteManagers.map((m) => m.addr).join(', ')}` : ''}); ` +
      `phoenix does not force it out: check the manager, then run \`docker swarm leave --force\` on ${host} by hand and re-run`,
  );
}

/** On the manager: init the swarm when the node is in none; ok when it manages one. */
function swarmInit(v: V): Action<V> {
  return {
    module: 'docker_swarm',
    summary: `swarm init --advertise-addr ${v.swarm.advertise[v.swarm.manager] ?? '?'}`,
    async run(ctx): Promise<ActionResult> {
      const host = ctx.host.name;
      const addr = v.swarm.advertise[host];
      if (!addr) throw new TaskError(`swarm.advertise has no address for the manager ${host} (inventory field swarm.advertise.${host})`);
      const s = await swarmState(ctx.probe, host);
      if (!s) {
        // check-mode exception: docker's install (an earlier task) was not applied: say what would happen, not fail.
        if (ctx.check && ctx.pendingChanges) return { changed: true, msg: `would init a swarm on ${addr} (docker not installed yet)` };
        throw new TaskError(`${host}: docker is not installed`);
      }
      if (s.state === 'pending' || s.state === 'error') throw halfJoined(host, s);
      if (s.state === 'locked') throw new TaskError(`${host}: the swarm is locked (autolock); unlock it by hand with \`docker swarm unlock\``);
      if (s.state === 'active') {
        if (!s.controlAvailable) throw new TaskError(`${host} should be the swarm manager but is a worker in swarm ${s.clusterId ?? '(unknown ID)'}; phoenix does not move it out`);
        return { changed: false, msg: `manager of swarm ${s.clusterId}` };
      }
      return ctx.change({ changed: true, msg: `would init a swarm advertising ${addr}` }, async () => {
        const cmd = `docker swarm init --advertise-addr ${shQuote(addr)} --listen-addr ${shQuote(`${addr}:2377`)}`;
        const r = await ctx.run(cmd);
        if (r.code !== 0) throw new TaskError(`${host}: docker swarm init failed`, { command: cmd, stderr: r.stderr, code: r.code });
        const after = await swarmState(ctx.probe, host);
        return { changed: true, msg: `initialized swarm ${after?.clusterId ?? ''}`.trim() };
      });
    },
  };
}

/** The worker join token, read on the manager (a Secret from the moment it is read). */
async function workerToken(mgr: Run, manager: string): Promise<Secret> {
  const r = await mgr('docker swarm join-token -q worker', { readOnly: true });
  if (r.code !== 0) throw new TaskError(`cannot read the worker join token on ${manager}`, { command: 'docker swarm join-token -q worker', stderr: r.stderr, code: r.code });
  const t = r.stdout.trim();
  if (!/^SWMTKN-/.test(t)) throw new TaskError(`the worker join token read on ${manager} does not look like one`);
  return new Secret(t, 'swarm worker join token');
}

/** On a worker: join the manager's swarm; ok when already in it; an error when in another. */
function swarmJoin(v: V): Action<V> {
  return {
    module: 'docker_swarm',
    summary: `swarm join (worker of ${v.swarm.manager})`,
    async run(ctx): Promise<ActionResult> {
      const host = ctx.host.name;
      const manager = v.swarm.manager;
      const addr = v.swarm.advertise[host];
      const mgrAddr = v.swarm.advertise[manager];
      if (!addr) throw new TaskError(`swarm.advertise has no address for ${host} (inventory field swarm.advertise.${host})`);
      if (!mgrAddr) throw new TaskError(`swarm.advertise has no address for the manager ${manager} (inventory field swarm.advertise.${manager})`);
      if (!ctx.delegate) throw new TaskError('swarm join needs the engine to reach the manager (ActionContext.delegate)');
      const mgr = await ctx.delegate(manager);
      // Both states at once (a round trip each); judged in the same order as before: the manager's first.
      const [mr, sr] = await Promise.allSettled([swarmState((cmd, o) => mgr(cmd, { ...o, readOnly: true }), manager), swarmState(ctx.probe, host)]);
      if (mr.status === 'rejected') throw mr.reason;
      if (sr.status === 'rejected') throw sr.reason;
      const m = mr.value;
      const s = sr.value;
      if (!s) {
        // check-mode exception: docker's install (an earlier task) was not applied: say what would happen, not fail.
        if (ctx.check && ctx.pendingChanges) return { changed: true, msg: `would join the swarm of ${manager} (docker not installed yet)` };
        throw new TaskError(`${host}: docker is not installed`);
      }
      if (s.state === 'pending' || s.state === 'error') throw halfJoined(host, s);
      if (s.state === 'locked') throw new TaskError(`${host}: the swarm is locked (autolock); unlock it by hand with \`docker swarm unlock\``);
      const mgrReady = m?.state === 'active' && m.controlAvailable;
      if (s.state === 'active') {
        if (!mgrReady) {
          throw new TaskError(`${host} is in swarm ${s.clusterId ?? '(unknown ID)'}, but the manager ${manager} manages no swarm (${m ? `LocalNodeState ${m.state}` : 'docker not installed'}); phoenix does not move ${host} out`);
        }
        if (s.clusterId !== m.clusterId)
          throw new TaskError(
            `${host} is in another swarm: ${s.clusterId ?? '(unknown ID)'}, not ${m.clusterId} managed by ${manager}; ` +
              `phoenix never forces a node out: run \`docker swarm leave\` on ${host} by hand if it should join`,
          );
        return { changed: false, msg: `${s.controlAvailable ? 'manager' : 'worker'} in swarm ${s.clusterId}` };
      }
      // inactive: join
      if (!mgrReady) {
        // check-mode exception: the manager's init (an earlier play) was not applied: say so, not fail.
        if (ctx.check) return { changed: true, msg: `would join the swarm ${manager} is to init` };
        throw new TaskError(`${host} cannot join: the manager ${manager} manages no swarm (${m ? `LocalNodeState ${m.state}` : 'docker not installed'}); run the manager's play first`);
      }
      return ctx.change({ changed: true, msg: `would join swarm ${m.clusterId} via ${mgrAddr}:2377` }, async () => {
        const token = await workerToken(mgr, manager);
        // The Engine API over the unix socket, body on stdin: the token is on no argument list.
        const body = JSON.stringify({ ListenAddr: `${addr}:2377`, AdvertiseAddr: addr, RemoteAddrs: [`${mgrAddr}:2377`], JoinToken: token.reveal() });
        const cmd = `curl -sS --unix-socket /var/run/docker.sock -o /dev/stderr -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary @- http://localhost/swarm/join`;
        const r = await ctx.run(cmd, { stdin: new Secret(body, 'swarm join request') });
        if (r.code !== 0 || r.stdout.trim() !== '200') {
          const after = await swarmState(ctx.probe, host).catch(() => undefined);
          if (after && (after.state === 'pending' || after.state === 'error')) throw halfJoined(host, after);
          throw new TaskError(`${host}: joining swarm ${m.clusterId} via ${mgrAddr}:2377 failed (HTTP ${r.stdout.trim() || '-'})`, { command: 'POST /swarm/join (docker.sock)', stderr: r.stderr, code: r.code });
        }
        const after = await swarmState(ctx.probe, host);
        if (after?.state !== 'active') throw halfJoined(host, after ?? s);
        return { changed: true, msg: `joined swarm ${after.clusterId}` };
      });
    },
  };
}

const NODES_SEP = '--phoenix-swarm-nodes--';
const NODES_OK = '--phoenix-swarm-nodes-listed--';

/**
 * The swarm's nodes as this manager lists them, in one round trip. GET /nodes answers only on an
 * active manager that reaches its quorum, which is what the callers need first; the node's own
 * state (GET /info: ~35 ms of dockerd's time a call on the lab's manager, against ~17 ms for
 * /nodes) is read only when it does not answer, to say why.
 */
async function managerNodes(ctx: ActionContext): Promise<{ nodes: NodeInfo[] } | { nodes: undefined; s: SwarmState | undefined; listed: () => NodeInfo[] }> {
  const cmd = `n=$(${NODES_PROBE}); c=$?; if [ $c = 0 ]; then echo ${shQuote(NODES_OK)}; printf '%s\n' "$n"; exit 0; fi\n( ${SWARM_PROBE}\n ); rc=$?; echo ${shQuote(NODES_SEP)}; echo "$c"; printf '%s\n' "$n"; exit $rc`;
  const r = await ctx.probe(cmd);
  if (r.code === 0 && r.stdout.startsWith(`${NODES_OK}\n`)) return { nodes: parseNodes(r.stdout.slice(NODES_OK.length + 1), ctx.host.name) };
  const i = r.stdout.lastIndexOf(`${NODES_SEP}\n`);
  const head = i >= 0 ? r.stdout.slice(0, i) : r.stdout;
  const tail = i >= 0 ? r.stdout.slice(i + NODES_SEP.length + 1) : '';
  const s = await swarmState(async () => ({ ...r, stdout: head }), ctx.host.name);
  const nl = tail.indexOf('\n');
  const code = Number(tail.slice(0, nl));
  const out = tail.slice(nl + 1);
  return {
    nodes: undefined,
    s,
    listed: () => {
      if (code !== 0) throw new TaskError(`${ctx.host.name}: cannot list the swarm's nodes`, { command: NODES_PROBE, stderr: r.stderr, code });
      return parseNodes(out, ctx.host.name);
    },
  };
}

async function listNodes(ctx: ActionContext): Promise<NodeInfo[]> {
  const cmd = NODES_PROBE;
  const r = await ctx.probe(cmd);
  if (r.code !== 0) throw new TaskError(`${ctx.host.name}: cannot list the swarm's nodes`, { command: cmd, stderr: r.stderr, code: r.code });
  return parseNodes(r.stdout, ctx.host.name);
}

/** Node labels from the inventory (merged: labels not in the inventory are left alone). */
function nodeLabels(v: V): Action<V> {
  return {
    module: 'docker_node',
    summary: `node labels (${Object.keys(v.swarm.nodeLabels).join(', ')})`,
    async run(ctx): Promise<ActionResult> {
      const view = await managerNodes(ctx);
      if (!view.nodes && (!view.s || view.s.state !== 'active')) {
        // check-mode exception: an earlier play's init was not applied (plays do not share pendingChanges).
        if (ctx.check) return { changed: true, msg: 'would label the nodes once the swarm exists' };
        throw new TaskError(`${ctx.host.name}: not a swarm manager (LocalNodeState ${view.s?.state ?? 'no docker'})`);
      }
      const nodes = view.nodes ?? view.listed();
      const todo: { host: string; id: string; adds: string[] }[] = [];
      const missing: string[] = [];
      for (const [host, want] of Object.entries(v.swarm.nodeLabels)) {
        const addr = v.swarm.advertise[host];
        const n = addr ? nodeByAddress(nodes, addr) : undefined;
        if (!n) {
          missing.push(`${host} (${addr ?? 'no swarm.advertise address'})`);
          continue;
        }
        const adds = labelChanges(n.labels, want);
        if (adds.length) todo.push({ host, id: n.id, adds });
      }
      if (missing.length) {
        // check-mode exception: the joins (an earlier play) were not applied.
        if (ctx.check) return { changed: true, msg: `would label; not nodes yet: ${missing.join(', ')}` };
        throw new TaskError(`swarm.nodeLabels names hosts that are not nodes of the swarm: ${missing.join(', ')}`);
      }
      if (!todo.length) return { changed: false };
      const msg = todo.map((t) => `${t.host}: ${t.adds.join(' ')}`).join('; ');
      return ctx.change({ changed: true, msg: `would set ${msg}` }, async () => {
        for (const t of todo) {
          const cmd = `docker node update ${t.adds.map((a) => `--label-add ${shQuote(a)}`).join(' ')} ${shQuote(t.id)}`;
          const r = await ctx.run(cmd);
          if (r.code !== 0) throw new TaskError(`cannot label node ${t.host}`, { command: cmd, stderr: r.stderr, code: r.code });
        }
        return { changed: true, msg: `set ${msg}` };
      });
    },
  };
}

/** The attachable overlay network the stacks and Traefik share. */
function overlayNetwork(v: V): Action<V> {
  const name = v.swarm.network;
  return {
    module: 'docker_network',
    summary: `overlay network ${name} (attachable)`,
    async run(ctx): Promise<ActionResult> {
      // Absent: prints nothing, exit 0. Present: its JSON. Docker unreachable: a non-zero exit.
      // One Engine API call (404: absent); the CLI where curl is missing.
      const api = `curl -sS --unix-socket /var/run/docker.sock -w ' %{http_code}' ${shQuote(`http://localhost/networks/${encodeURIComponent(name)}`)}`;
      const probe =
        `if command -v curl >/dev/null 2>&1; then o=$(${api}) || exit 1; c=\${o##* }; b=\${o% *}; case $c in 200) printf '%s\\n' "$b";; 404) ;; *) printf '%s\\n' "$b" >&2; exit 1;; esac; ` +
        `else docker info >/dev/null && { docker network inspect --format '{{json .}}' ${shQuote(name)} 2>/dev/null || true; }; fi`;
      const r = await ctx.probe(probe);
      if (r.code !== 0) {
        // check-mode exception: an earlier play's init was not applied: say what would happen, not fail.
        if (ctx.check) return { changed: true, msg: `would create ${name} once the swarm exists` };
        throw new TaskError(`${ctx.host.name}: cannot inspect networks`, { command: probe, stderr: r.stderr, code: r.code });
      }
      if (r.stdout.trim()) {
        const n = JSON.parse(r.stdout.trim()) as { Driver: string; Attachable: boolean; Scope: string };
        const wrong = [n.Driver !== 'overlay' ? `driver ${n.Driver} (want overlay)` : '', !n.Attachable ? 'not attachable' : ''].filter(Boolean);
        if (wrong.length) throw new TaskError(`network ${name} exists on ${ctx.host.name} but is ${wrong.join(', ')}; phoenix does not remove it (stacks may use it): fix it by hand`);
        return { changed: false };
      }
      return ctx.change({ changed: true, msg: `would create ${name}` }, async () => {
        const cmd = `docker network create --driver overlay --attachable ${shQuote(name)}`;
        const c = await ctx.run(cmd);
        if (c.code !== 0) throw new TaskError(`cannot create network ${name}`, { command: cmd, stderr: c.stderr, code: c.code });
        return { changed: true, msg: `created ${name}` };
      });
    },
  };
}

/** Every node of the inventory Ready and active, with the role the inventory gives it (a deadline, no sleeps). */
function nodesReady(v: V, timeout = 60): Action<V> {
  return {
    module: 'docker_node',
    summary: `nodes ready: ${Object.keys(v.swarm.advertise).join(', ')}`,
    async run(ctx): Promise<ActionResult> {
      const deadline = Date.now() + timeout * 1000;
      for (;;) {
        const view = await managerNodes(ctx);
        if (!view.nodes && (!view.s || view.s.state !== 'active')) {
          // check-mode exception: an earlier play's init was not applied: not a failure.
          if (ctx.check) return { changed: false, msg: 'swarm not formed yet (check mode)' };
          throw new TaskError(`${ctx.host.name}: not in a swarm`);
        }
        const nodes = view.nodes ?? view.listed();
        const bad: string[] = [];
        for (const [host, addr] of Object.entries(v.swarm.advertise)) {
          const n = nodeByAddress(nodes, addr);
          const want = host === v.swarm.manager ? 'manager' : 'worker';
          if (!n) bad.push(`${host}: not a node`);
          else if (n.state !== 'ready' || n.availability !== 'active') bad.push(`${host}: ${n.state}/${n.availability}`);
          else if (n.role !== want) bad.push(`${host}: ${n.role}, want ${want}`);
        }
        if (!bad.length) return { changed: false, msg: `${nodes.length} nodes ready` };
        // check-mode exception: earlier plays' joins were not applied: one look, no waiting.
        if (ctx.check) return { changed: false, msg: `not ready yet (check mode): ${bad.join('; ')}` };
        if (bad.some((b) => b.includes('want')) || Date.now() > deadline) throw new TaskError(`swarm nodes not ready after ${timeout}s: ${bad.join('; ')}`);
        await ctx.probe('sleep 0.5');
      }
    },
  };
}

/**
 * A node that left and joined again is listed twice on the manager: the new entry and the old one,
 * `down`. The old one is removed, only when an entry with the same hostname is `ready` (never a
 * node that is merely down), waiting (bounded) for the manager to notice the old one is gone.
 */
function staleNodes(timeout = 30): Action<V> {
  return {
    module: 'docker_node',
    summary: 'stale node entries (same hostname as a Ready node, Down) removed',
    async run(ctx): Promise<ActionResult> {
      const first = await managerNodes(ctx);
      if (!first.nodes && (!first.s || first.s.state !== 'active' || !first.s.controlAvailable)) {
        // check-mode exception: the swarm is formed by an earlier play that did not really run.
        if (ctx.check) return { changed: false, msg: 'swarm not formed yet (check mode)' };
        throw new TaskError(`${ctx.host.name}: not a swarm manager (LocalNodeState ${first.s?.state ?? 'no docker'})`);
      }
      const deadline = Date.now() + timeout * 1000;
      let listed: (() => Promise<NodeInfo[]>) | undefined = async () => first.nodes ?? first.listed();
      for (;;) {
        const { stale, leaving } = staleEntries(await (listed ?? (() => listNodes(ctx)))());
        listed = undefined;
        // check-mode exception: one look, no waiting for a node that is leaving.
        if (leaving.length && !ctx.check && Date.now() < deadline) {
          await ctx.probe('sleep 1');
          continue;
        }
        const note = leaving.length ? `; not down (yet), left alone: ${leaving.map((n) => `${n.hostname} ${n.id.slice(0, 12)} ${n.state}`).join(', ')}` : '';
        if (!stale.length) return { changed: false, msg: note ? note.slice(2) : undefined };
        const names = stale.map((n) => `${n.hostname} ${n.id.slice(0, 12)}`).join(', ');
        return ctx.change({ changed: true, msg: `would remove ${names}${note}` }, async () => {
          for (const n of stale) {
            const cmd = `docker node rm ${shQuote(n.id)}`;
            const r = await ctx.run(cmd);
            if (r.code !== 0) throw new TaskError(`cannot remove the stale node entry ${n.hostname} (${n.id})`, { command: cmd, stderr: r.stderr, code: r.code });
          }
          return { changed: true, msg: `removed ${names}${note}` };
        });
      }
    },
  };
}

/** The docker apt repository's source file task: a change means apt's lists must be updated. */
const dockerRepo = output('docker apt repository');

const engineTasks = [
  task<V>({
    name: 'docker apt repository key',
    when: ({ vars }) => vars.swarm.engine.kind === 'docker-ce',
    do: ({ vars }) => {
      const e = vars.swarm.engine as Extract<V['swarm']['engine'], { kind: 'docker-ce' }>;
      return getUrl({ url: e.keyUrl, dest: '/etc/apt/keyrings/docker.asc', sha256: e.keySha256 });
    },
  }),
  task<V>({
    name: 'docker apt repository',
    register: dockerRepo,
    when: ({ vars }) => vars.swarm.engine.kind === 'docker-ce',
    do: ({ vars }) => {
      const e = vars.swarm.engine as Extract<V['swarm']['engine'], { kind: 'docker-ce' }>;
      return copy({
        dest: '/etc/apt/sources.list.d/docker.sources',
        content: `Types: deb\nURIs: ${e.repo}\nSuites: ${e.suite}\nComponents: stable\nSigned-By: /etc/apt/keyrings/docker.asc\n`,
      });
    },
  }),
  task<V>({
    name: 'apt lists after adding the docker repository',
    uses: [dockerRepo],
    when: ({ result }) => result(dockerRepo).changed === true,
    do: command(['apt-get', 'update', '-q']),
  }),
  task<V>({ name: 'docker engine installed', do: ({ vars }) => apt({ name: [...vars.swarm.engine.packages, 'curl', 'openssl'] }) }),
  task<V>({ name: 'docker running', do: systemd({ name: 'docker', state: 'started', enabled: true }) }),
];

export const swarmNode = role<V>({
  name: 'swarm',
  vars: swarmVarsSchema,
  tags: ['docker'],
  tasks: [
    ...engineTasks,
    task<V>({ name: 'swarm initialized on the manager', when: ({ host, vars }) => isManager(host, vars), do: ({ vars }) => swarmInit(vars) }),
    task<V>({ name: 'swarm joined by the worker', when: ({ host, vars }) => !isManager(host, vars), do: ({ vars }) => swarmJoin(vars) }),
  ],
});

export const swarmCluster = role<V>({
  name: 'swarm',
  vars: swarmVarsSchema,
  tasks: [
    // Ready first: a node that just joined again is listed twice until then, and the labels must
    // go to its new entry (a label on the stale one would leave its services unplaceable).
    task<V>({ name: 'nodes ready', do: ({ vars }) => nodesReady(vars) }),
    task<V>({ name: 'stale node entries removed', do: staleNodes() }),
    task<V>({ name: 'node labels', do: ({ vars }) => nodeLabels(vars) }),
    task<V>({ name: 'overlay network', do: ({ vars }) => overlayNetwork(vars) }),
  ],
});

export default swarmNode;
