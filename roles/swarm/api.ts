// Docker's TCP API on the swarm manager (:2376) with TLS and client verification (tlsverify):
// the earlier bash version had TLS without client verification. The server certificate comes
// from step-ca (certbot over ACME http-01, roles/certs). Clients are verified against the
// Docker API's own client CA on the manager (./client-ca.ts), never the step-ca root: every
// guest holds a step-ca certificate, and none of them may open the swarm (issue 16, item 1).
//
//   dockerApi        on the manager: certificate, the client CA, daemon.json (merged: TLS keys,
//                    tlscacert = the client CA, hosts fd:// + tcp://<advertise>:2376), a drop-in
//                    so dockerd takes its hosts from daemon.json, a restart only when they
//                    changed (the runner's `replace`: rolled back to the previous files when
//                    dockerd does not come back, docs/rollback.md), and a self-test against the live daemon: a client certificate of the
//                    client CA is served; no certificate, the manager's own step-ca certificate
//                    and the certificates named in swarm.tlsApi.refuse (the gateway's) are refused.
//   dockerApiClient  on the Traefik host: a key made there, its CSR signed by the manager's
//                    client CA (client auth only), at traefik.swarm.tls.{cert,key}.
import { randomBytes } from 'node:crypto';
import { file, replace, shell, shQuote, task, role, TaskError, type Action, type ActionResult } from '../../runner/index.ts';
import type { BaseVars } from '../base-vars.ts';
import type { CertVars } from '../certs/vars.ts';
import type { TraefikVars } from '../traefik/vars.ts';
import type { TrustVars } from '../trust/vars.ts';
import type { SwarmVars } from './vars.ts';
import { certificateTasks, liveDir } from '../certs/index.ts';
import { CLIENT_CA_CERT, CLIENT_CA_SCRIPT, dockerClientCert, signScript } from './client-ca.ts';

/**
 * What the Docker API roles read: the swarm's vars, the certificate settings, trust's root name
 * (the server's CA file) and Traefik's swarm provider (where the client certificate goes).
 */
export type DockerApiRoleVars = SwarmVars & Pick<CertVars, 'certs'> & Pick<TrustVars, 'trust'> & Pick<TraefikVars, 'traefik'> & BaseVars;
type V = DockerApiRoleVars;

export const DOCKER_API_CERT = 'docker-api';
export const DOCKER_CLIENT_CERT = 'docker-client';
const DAEMON_JSON = '/etc/docker/daemon.json';
const DROP_IN = '/etc/systemd/system/docker.service.d/phoenix-hosts.conf';
/** certbot's deploy hook of the client certificate before it came from the client CA (removed). */
const OLD_CLIENT_HOOK = '/usr/local/lib/phoenix/docker-client-cert-deploy';

const rootPath = (v: V) => `/usr/local/share/ca-certificates/${v.trust.rootName}`;
const dockerd = (v: V) => (v.swarm.engine.kind === 'docker-ce' ? '/usr/bin/dockerd' : '/usr/sbin/dockerd');

/** The keys phoenix sets in daemon.json; the rest of the file is kept. */
export function daemonTlsKeys(v: V, address: string): Record<string, unknown> {
  const live = liveDir(DOCKER_API_CERT);
  return {
    hosts: ['fd://', `tcp://${address}:${v.swarm.tlsApi.port}`],
    tls: true,
    tlsverify: true,
    // Only certificates of the Docker API client CA open the API (not the step-ca root).
    tlscacert: CLIENT_CA_CERT,
    tlscert: `${live}/fullchain.pem`,
    tlskey: `${live}/privkey.pem`,
  };
}

/** daemon.json with the TLS keys merged in: the rest of the file (someone else's settings) is kept. */
export function mergedDaemonJson(v: V, host: string, address: string, current: Buffer | undefined): string {
  const before = current?.toString('utf8') ?? '';
  let have: Record<string, unknown> = {};
  if (before.trim()) {
    try {
      have = JSON.parse(before) as Record<string, unknown>;
    } catch (e) {
      throw new TaskError(`${host}: ${DAEMON_JSON} is not valid JSON (${(e as Error).message}); fix it by hand, phoenix merges into it`);
    }
  }
  const want = { ...have, ...daemonTlsKeys(v, address) };
  // Unchanged keys, unchanged file: the merge does not reformat a file that already says it all.
  if (JSON.stringify(want) === JSON.stringify(have)) return before;
  return `${JSON.stringify(want, null, 2)}\n`;
}

/** The TCP address a daemon.json's "hosts" lists, if any (the TLS API). */
function tcpIn(json: string): { host: string; port: number } | Record<string, never> {
  try {
    const hosts = (JSON.parse(json) as { hosts?: unknown }).hosts;
    const tcp = Array.isArray(hosts) ? hosts.map(String).map((h) => /^tcp:\/\/([^:]+):(\d+)$/.exec(h)).find(Boolean) : undefined;
    return tcp ? { host: tcp[1]!, port: Number(tcp[2]) } : {};
  } catch {
    return {};
  }
}

/**
 * The drop-in and daemon.json through the runner's `replace` (docs/rollback.md): both files go
 * live together, dockerd restarts once, and when it does not come back (dockerd up and the TLS
 * port listening) both are put back (a drop-in this run created is removed) and dockerd
 * restarted on them; the run fails with dockerd's own log lines.
 */
function tlsApiConfig(v: V): Action<V> {
  return {
    module: 'replace',
    summary: `${DROP_IN} and ${DAEMON_JSON} (tlsverify, hosts fd:// + tcp :${v.swarm.tlsApi.port}), dockerd restarted, rolled back if it does not come back`,
    async run(ctx): Promise<ActionResult> {
      const addr = v.swarm.advertise[ctx.host.name];
      if (!addr) throw new TaskError(`swarm.advertise has no address for ${ctx.host.name} (inventory field swarm.advertise.${ctx.host.name})`);
      return replace({
        name: 'dockerd',
        files: [
          { dest: DAEMON_JSON, mode: '0644', content: (current) => mergedDaemonJson(v, ctx.host.name, addr, current) },
          {
            dest: DROP_IN,
            mode: '0644',
            content: `# managed by phoenix (roles/swarm/api.ts): listen addresses are in ${DAEMON_JSON} ("hosts")\n[Service]\nExecStart=\nExecStart=${dockerd(v)} --containerd=/run/containerd/containerd.sock $DOCKER_OPTS\n`,
          },
        ],
        // Up: dockerd answers on its socket, and on the TLS port when the live daemon.json (the new
        // one, or after a rollback the previous one) says it listens there.
        // dockerd must run for the swarm: a stopped or failed one is started on the new files.
        service: { unit: 'docker', daemonReload: true, ready: (json) => ({ command: 'docker info >/dev/null', ...tcpIn(json) }), timeout: 60, whenStopped: 'start' },
      }).run(ctx);
    },
  };
}

/**
 * Several commands at once on one host, in one round trip: each in the background with its
 * stdout, stderr and exit status kept apart, then all said in order between markers.
 */
export function refusalsHere(mark: string, cmds: string[]): string {
  const run = cmds.map((c, i) => `{ ( ${c} ) >"$t/o${i}" 2>"$t/e${i}"; echo $? >"$t/c${i}"; } &`).join('\n');
  const say = cmds.map((_, i) => `printf '%s %s\\n' ${mark}-${i} "$(cat "$t/c${i}")"; cat "$t/o${i}"; printf '\\n%s\\n' ${mark}-err; cat "$t/e${i}"; printf '\\n%s\\n' ${mark}-end`).join('\n');
  return `t=$(mktemp -d) || exit 1; trap 'rm -rf "$t"' EXIT\n${run}\nwait\n${say}`;
}

/** The results of refusalsHere, in the order of its commands; a missing one is an error with what the script said. */
export function parseRefusals(mark: string, r: { code: number; stdout: string; stderr: string }, n: number): { code: number; stdout: string; stderr: string }[] {
  return Array.from({ length: n }, (_, i) => {
    const m = new RegExp(`${mark}-${i} (\\d+)\\n([\\s\\S]*?)\\n${mark}-err\\n([\\s\\S]*?)\\n${mark}-end`).exec(r.stdout);
    if (!m) throw new TaskError(`the docker API self-test could not read its checks' output (exit ${r.code}): ${(r.stderr.trim() || r.stdout.trim()).slice(0, 500)}`, { stderr: r.stderr, code: r.code });
    return { code: Number(m[1]), stdout: m[2]!, stderr: m[3]! };
  });
}

/** curl's answer to one client of the API: refused means no HTTP status and a TLS alert from dockerd. */
const refusedBy = (r: { code: number; stdout: string; stderr: string }) => r.stdout.trim() === '000' && r.code !== 0 && /alert|certificate required/i.test(r.stderr);

/**
 * Against the live daemon: a client certificate of the client CA (an ephemeral one, made and
 * deleted here) is served; no certificate, the manager's own step-ca certificate, and each
 * certificate of swarm.tlsApi.refuse (curl run on that host, with that host's key) are refused.
 */
function selfTest(v: V): Action<V> {
  return {
    module: 'docker_api_check',
    summary: `docker API :${v.swarm.tlsApi.port} serves only the Docker API client CA's certificates`,
    async run(ctx): Promise<ActionResult> {
      const name = v.swarm.tlsApi.names[0]!;
      const port = v.swarm.tlsApi.port;
      const addr = v.swarm.advertise[ctx.host.name];
      const url = `https://${name}:${port}/version`;
      const curl = (extra: string) => `curl -sS --max-time 5 --resolve ${shQuote(`${name}:${port}:${addr}`)} --cacert ${shQuote(rootPath(v))} ${extra} -o /dev/null -w '%{http_code}' ${shQuote(url)}`;
      const hasCa = (await ctx.probe(`test -s ${CLIENT_CA_CERT}`)).code === 0;
      // check-mode exception: the client CA is made by an earlier task that did not really run.
      if (!hasCa && ctx.check) return { changed: false, msg: 'the client CA does not exist yet (check mode)' };
      const ephemeral =
        `t=$(mktemp -d); trap 'rm -rf "$t"' EXIT; (umask 077; openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$t/k" -subj /CN=phoenix-self-test) | ` +
        `sh -c ${shQuote(signScript(['phoenix-self-test'], 1))} > "$t/c" && ${curl('--cert "$t/c" --key "$t/k"')}`;
      // dockerd may be (re)starting (a certificate renewal restarts it): wait for it, with a deadline.
      const deadline = Date.now() + 30_000;
      let withCert = await ctx.probe(ephemeral);
      // check-mode exception: a restart (an earlier task) was not applied: one look, no waiting.
      while (withCert.stdout.trim() !== '200' && !ctx.check && Date.now() < deadline) {
        await ctx.probe('sleep 0.5');
        withCert = await ctx.probe(ephemeral);
      }
      if (withCert.stdout.trim() !== '200') {
        // check-mode exception: the certificate or restart (earlier tasks) were not applied: not a failure.
        if (ctx.check) return { changed: false, msg: `not serving yet (check mode): ${withCert.stderr.trim()}` };
        throw new TaskError(`${url} did not serve a client certificate of the Docker API client CA (HTTP ${withCert.stdout.trim()})`, { stderr: withCert.stderr });
      }
      const refused: string[] = [];
      const mustRefuse = async (what: string, r: { code: number; stdout: string; stderr: string }) => {
        if (refusedBy(r)) return void refused.push(what);
        throw new TaskError(
          r.stdout.trim() === '000'
            ? `${url}: could not tell whether ${what} is refused (no TLS alert from dockerd): ${r.stderr.trim()}`
            : `${url} answered ${what} (HTTP ${r.stdout.trim()}): the Docker API must serve only certificates of its own client CA`,
          { stderr: r.stderr },
        );
      };
      // The refusals are independent of each other: the manager's two curls run at once in one
      // probe, beside the curls on the hosts of swarm.tlsApi.refuse; judged in this order.
      const own = liveDir(DOCKER_API_CERT);
      const mark = `phx-${randomBytes(6).toString('hex')}`;
      const delegate = ctx.delegate;
      if ((v.swarm.tlsApi.refuse ?? []).length && !delegate) throw new TaskError('the docker API self-test needs the engine to reach other hosts (ActionContext.delegate)');
      // Settled, not all: a failed delegate (an unreachable host) does not hide the manager's own verdicts, judged first as before.
      const [hereP, thereP] = await Promise.allSettled([
        ctx.probe(refusalsHere(mark, [curl(''), `if [ -s ${own}/privkey.pem ]; then ${curl(`--cert ${own}/fullchain.pem --key ${own}/privkey.pem`)}; else echo absent; fi`])),
        Promise.all(
          (v.swarm.tlsApi.refuse ?? []).map(async (r) => {
            const live = liveDir(r.certName);
            // On that host, with its own key: the key never travels.
            const on = await delegate!(r.host);
            return { r, res: await on(`if [ -s ${live}/privkey.pem ]; then ${curl(`--cert ${live}/fullchain.pem --key ${live}/privkey.pem`)}; else echo absent; fi`, { readOnly: true }) };
          }),
        ),
      ]);
      if (hereP.status === 'rejected') throw hereP.reason;
      const [none, mine] = parseRefusals(mark, hereP.value, 2);
      await mustRefuse('a client without a certificate', none!);
      if (mine!.stdout.trim() !== 'absent') await mustRefuse(`${ctx.host.name}'s own step-ca certificate`, mine!);
      const notYet: string[] = [];
      if (thereP.status === 'rejected') throw thereP.reason;
      for (const { r, res } of thereP.value) {
        if (res.stdout.trim() === 'absent') notYet.push(`${r.host}'s ${r.certName}`);
        else await mustRefuse(`${r.host}'s step-ca certificate ${r.certName}`, res);
      }
      return { changed: false, msg: `served with a client CA certificate; refused: ${refused.join(', ')}${notYet.length ? `; not issued yet: ${notYet.join(', ')}` : ''}` };
    },
  };
}


export const dockerApi = role<V>({
  name: 'swarm',
  tags: ['docker-api'],
  tasks: [
    ...certificateTasks<V>({
      certName: DOCKER_API_CERT,
      names: ({ vars }) => vars.swarm.tlsApi.names,
      challenge: { standalone: { port: 80 } },
      // dockerd reads its certificate at start only.
      deployHook: 'systemctl restart docker',
    }),
    task<V>({ name: 'Docker API client CA', do: shell(CLIENT_CA_SCRIPT, { creates: CLIENT_CA_CERT }) }),
    task<V>({ name: 'docker.service drop-in directory', do: file({ path: '/etc/systemd/system/docker.service.d', state: 'directory', mode: '0755' }) }),
    // dockerd takes its hosts from daemon.json (the drop-in); one restart, rolled back together.
    task<V>({ name: 'daemon.json: TLS API with client verification', do: ({ vars }) => tlsApiConfig(vars) }),
    task<V>({ name: 'docker API serves only its client CA', do: ({ vars }) => selfTest(vars) }),
  ],
});

export const dockerApiClient = role<V>({
  name: 'swarm',
  tags: ['docker-api'],
  tasks: [
    task<V>({
      name: 'docker API client certificate',
      do: ({ vars }) =>
        dockerClientCert({
          caHost: vars.swarm.manager,
          names: vars.swarm.tlsApi.clientNames,
          cert: vars.traefik.swarm.tls.cert,
          key: vars.traefik.swarm.tls.key,
          group: vars.traefik.user,
        }),
    }),
    // Before the client CA, this certificate came from step-ca through certbot, whose renewal
    // would copy a step-ca certificate back over the client CA's one: that lineage goes.
    task<V>({
      name: 'old step-ca docker client certificate removed',
      do: shell(`certbot delete --non-interactive --cert-name ${DOCKER_CLIENT_CERT} >/dev/null && rm -f ${OLD_CLIENT_HOOK}`, {
        onlyIf: `test -e /etc/letsencrypt/renewal/${DOCKER_CLIENT_CERT}.conf`,
      }),
    }),
    task<V>({ name: 'old client certificate hook removed', do: file({ path: OLD_CLIENT_HOOK, state: 'absent' }) }),
  ],
});
