// Docker's TCP API on the swarm manager (:2376) with TLS and client verification (tlsverify):
// the earlier bash version had TLS without client verification. The server certificate comes
// from step-ca (certbot over ACME http-01, roles/certs); clients must present a certificate that
// chains to the step-ca root (only that root is dockerd's tlscacert, never the system bundle).
//
//   dockerApi        on the manager: certificate, daemon.json (merged: TLS keys and hosts
//                    fd:// + tcp://<advertise>:2376), a drop-in so dockerd takes its hosts from
//                    daemon.json, a restart only when they changed (rolled back to the previous
//                    files when dockerd does not come back), and a self-test: a client without
//                    a certificate is refused, one with a step-ca certificate is served.
//   dockerApiClient  on the Traefik host: a step-ca client certificate for Traefik's swarm
//                    provider, copied for the traefik user to traefik.swarm.tls.{cert,key}.
//
// Note: any certificate the step-ca root issued is accepted by dockerd (that is what
// tlsverify checks); who may obtain one is step-ca's provisioners' policy.
import { command, copy, file, shQuote, task, role, TaskError, type Action, type ActionResult } from '../../runner/index.ts';
import { fileState, readFile } from '../../runner/facts.ts';
import { putFile } from '../../runner/modules/copy.ts';
import type { PhoenixVars } from '../../inventory.ts';
import { certificateTasks, liveDir } from '../certs/index.ts';
import { ACME_CHALLENGE_PORT } from '../traefik/vars.ts';

type V = PhoenixVars;

export const DOCKER_API_CERT = 'docker-api';
export const DOCKER_CLIENT_CERT = 'docker-client';
const DAEMON_JSON = '/etc/docker/daemon.json';
const DROP_IN = '/etc/systemd/system/docker.service.d/phoenix-hosts.conf';
const BACKUP = '.phoenix-prev';
const CLIENT_HOOK = '/usr/local/lib/phoenix/docker-client-cert-deploy';

const rootPath = (v: V) => `/usr/local/share/ca-certificates/${v.trust.rootName}`;
const dockerd = (v: V) => (v.swarm.engine.kind === 'docker-ce' ? '/usr/bin/dockerd' : '/usr/sbin/dockerd');

/** The keys phoenix sets in daemon.json; the rest of the file is kept. */
export function daemonTlsKeys(v: V, address: string): Record<string, unknown> {
  const live = liveDir(DOCKER_API_CERT);
  return {
    hosts: ['fd://', `tcp://${address}:${v.swarm.tlsApi.port}`],
    tls: true,
    tlsverify: true,
    tlscacert: rootPath(v),
    tlscert: `${live}/fullchain.pem`,
    tlskey: `${live}/privkey.pem`,
  };
}

/** daemon.json merged with the TLS keys, written atomically (the old file kept as a backup for rollback). */
function daemonJson(v: V): Action<V> {
  return {
    module: 'docker_daemon_json',
    summary: `${DAEMON_JSON}: tlsverify, hosts fd:// + tcp :${v.swarm.tlsApi.port}`,
    async run(ctx): Promise<ActionResult> {
      const addr = v.swarm.advertise[ctx.host.name];
      if (!addr) throw new TaskError(`swarm.advertise has no address for ${ctx.host.name} (inventory field swarm.advertise.${ctx.host.name})`);
      const st = await fileState(ctx, DAEMON_JSON);
      let have: Record<string, unknown> = {};
      const before = st.exists ? (await readFile(ctx, DAEMON_JSON)).toString('utf8') : '';
      if (before.trim()) {
        try {
          have = JSON.parse(before) as Record<string, unknown>;
        } catch (e) {
          throw new TaskError(`${ctx.host.name}: ${DAEMON_JSON} is not valid JSON (${(e as Error).message}); fix it by hand, phoenix merges into it`);
        }
      }
      const want = { ...have, ...daemonTlsKeys(v, addr) };
      if (JSON.stringify(want) === JSON.stringify(have)) return { changed: false };
      // The backup is part of the change: made in a real run only.
      if (st.exists)
        await ctx.change({ changed: true }, async () => {
          const r = await ctx.run(`cp -p ${DAEMON_JSON} ${DAEMON_JSON}${BACKUP}`);
          if (r.code !== 0) throw new TaskError(`cannot back up ${DAEMON_JSON}`, { stderr: r.stderr });
        });
      return putFile(ctx, { dest: DAEMON_JSON, mode: '0644' }, Buffer.from(`${JSON.stringify(want, null, 2)}\n`), false);
    },
  };
}

/** Restart dockerd (only when its files changed); when it does not come back, the previous files are restored. */
function restartDocker(v: V, dropInCreated: boolean): Action<V> {
  return {
    module: 'docker_restart',
    summary: 'restart docker (TLS API config changed)',
    async run(ctx): Promise<ActionResult> {
      return ctx.change({ changed: true, msg: 'would restart docker' }, async () => {
        const port = v.swarm.tlsApi.port;
        const addr = v.swarm.advertise[ctx.host.name];
        const up = `end=$(( $(date +%s) + 60 )); until docker info >/dev/null 2>&1 && timeout 2 bash -c ${shQuote(`exec 3<>/dev/tcp/${addr}/${port}`)} 2>/dev/null; do [ "$(date +%s)" -ge "$end" ] && exit 1; sleep 0.3; done`;
        const r = await ctx.run(`systemctl daemon-reload && systemctl restart docker && ${up}`, { timeout: 120 });
        if (r.code === 0) {
          await ctx.run(`rm -f ${DAEMON_JSON}${BACKUP}`);
          return { changed: true, msg: `dockerd serves the TLS API on ${addr}:${port}` };
        }
        const log = (await ctx.probe('journalctl -u docker --no-pager -n 15 -o cat 2>/dev/null')).stdout.trim();
        const rollback = await ctx.run(
          // The drop-in goes only if this run made it: an older daemon.json may already name hosts.
          `if [ -f ${DAEMON_JSON}${BACKUP} ]; then mv -f ${DAEMON_JSON}${BACKUP} ${DAEMON_JSON}; else rm -f ${DAEMON_JSON}; fi; ${dropInCreated ? `rm -f ${DROP_IN}; ` : ''}systemctl daemon-reload; systemctl restart docker && docker info >/dev/null`,
          { timeout: 120 },
        );
        throw new TaskError(
          `${ctx.host.name}: dockerd did not come back with the TLS API config; ${rollback.code === 0 ? 'the previous config was restored and dockerd runs again' : 'restoring the previous config FAILED too'}`,
          { stderr: log, code: r.code },
        );
      });
    },
  };
}

/** A client without a certificate is refused; one with a step-ca certificate is served. */
function selfTest(v: V): Action<V> {
  return {
    module: 'docker_api_check',
    summary: `docker API :${v.swarm.tlsApi.port} refuses clients without a certificate`,
    async run(ctx): Promise<ActionResult> {
      const name = v.swarm.tlsApi.names[0];
      const url = `https://${name}:${v.swarm.tlsApi.port}/version`;
      const live = liveDir(DOCKER_API_CERT);
      const client = `curl -sS --max-time 5 --cacert ${shQuote(rootPath(v))} --cert ${live}/fullchain.pem --key ${live}/privkey.pem -o /dev/null -w '%{http_code}' ${shQuote(url)}`;
      // dockerd may be (re)starting (a certificate renewal restarts it): wait for it, with a deadline.
      const deadline = Date.now() + 30_000;
      let withCert = await ctx.probe(client);
      // check-mode exception: a restart (an earlier task) was not applied: one look, no waiting.
      while (withCert.stdout.trim() !== '200' && !ctx.check && Date.now() < deadline) {
        await ctx.probe('sleep 0.5');
        withCert = await ctx.probe(client);
      }
      const anon = await ctx.probe(`curl -sS --max-time 5 --cacert ${shQuote(rootPath(v))} -o /dev/null -w '%{http_code}' ${shQuote(url)}`);
      if (withCert.stdout.trim() !== '200') {
        // check-mode exception: the certificate or restart (earlier tasks) were not applied: not a failure.
        if (ctx.check) return { changed: false, msg: `not serving yet (check mode): ${withCert.stderr.trim()}` };
        throw new TaskError(`${url} did not serve a client with a step-ca certificate (HTTP ${withCert.stdout.trim()})`, { stderr: withCert.stderr });
      }
      if (anon.stdout.trim() !== '000' || anon.code === 0) {
        throw new TaskError(`${url} answered a client without a certificate (HTTP ${anon.stdout.trim()}): tlsverify is not in force`);
      }
      return { changed: false, msg: `refused without a certificate (${anon.stderr.trim().split('\n').pop()}); served with one` };
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
    task<V>({ name: 'docker.service drop-in directory', do: file({ path: '/etc/systemd/system/docker.service.d', state: 'directory', mode: '0755' }) }),
    task<V>({
      name: 'dockerd takes its hosts from daemon.json',
      register: 'dockerDropIn',
      do: ({ vars }) =>
        copy({
          dest: DROP_IN,
          mode: '0644',
          content: `# managed by phoenix (roles/swarm/api.ts): listen addresses are in ${DAEMON_JSON} ("hosts")\n[Service]\nExecStart=\nExecStart=${dockerd(vars)} --containerd=/run/containerd/containerd.sock $DOCKER_OPTS\n`,
        }),
    }),
    task<V>({ name: 'daemon.json: TLS API with client verification', register: 'dockerDaemonJson', do: ({ vars }) => daemonJson(vars) }),
    task<V>({
      name: 'docker restarted for the TLS API',
      when: ({ registered }) => [registered.dockerDropIn, registered.dockerDaemonJson].some((r) => r !== undefined && (r as { changed: unknown }).changed !== false),
      do: ({ vars, registered }) => restartDocker(vars, (registered.dockerDropIn as { msg?: string } | undefined)?.msg === 'created'),
    }),
    task<V>({ name: 'docker API refuses clients without a certificate', do: ({ vars }) => selfTest(vars) }),
  ],
});

/** certbot's deploy hook on the Traefik host: the client certificate for the traefik user. */
function clientHookScript(v: V): string {
  const live = liveDir(DOCKER_CLIENT_CERT);
  const { cert, key } = v.traefik.swarm.tls;
  return `#!/bin/sh
# managed by phoenix (roles/swarm/api.ts): certbot's deploy hook for the docker API client
# certificate; copies ${live}/{fullchain,privkey}.pem for the ${v.traefik.user} user (0640).
set -eu
install -d -m 0750 -o root -g ${v.traefik.user} ${shQuote(cert.replace(/\/[^/]+$/, ''))} ${shQuote(key.replace(/\/[^/]+$/, ''))}
for pair in ${live}/fullchain.pem:${cert} ${live}/privkey.pem:${key}; do
  src=\${pair%%:*}; dst=\${pair#*:}
  t=$(mktemp "\${dst%/*}/.phx-XXXXXX")
  cp "$src" "$t" && chown root:${v.traefik.user} "$t" && chmod 0640 "$t" && mv -f "$t" "$dst"
done
`;
}

export const dockerApiClient = role<V>({
  name: 'swarm',
  tags: ['docker-api'],
  tasks: [
    task<V>({ name: 'client certificate hook directory', do: file({ path: '/usr/local/lib/phoenix', state: 'directory', mode: '0755' }) }),
    task<V>({ name: 'client certificate deploy hook', do: ({ vars }) => copy({ dest: CLIENT_HOOK, content: clientHookScript(vars), mode: '0755' }) }),
    ...certificateTasks<V>({
      certName: DOCKER_CLIENT_CERT,
      names: ({ vars }) => vars.swarm.tlsApi.clientNames,
      // Traefik forwards /.well-known/acme-challenge/ on :80 to certbot here (roles/traefik).
      challenge: { standalone: { port: ACME_CHALLENGE_PORT, address: '127.0.0.1' } },
      deployHook: CLIENT_HOOK,
    }),
    task<V>({
      name: "traefik's copy of the docker client certificate",
      do: ({ vars }) => {
        const live = liveDir(DOCKER_CLIENT_CERT);
        const { cert, key } = vars.traefik.swarm.tls;
        return command([CLIENT_HOOK], {
          onlyIf: `test -f ${live}/fullchain.pem && ! { cmp -s ${live}/fullchain.pem ${cert} && cmp -s ${live}/privkey.pem ${key}; }`,
        });
      },
    }),
  ],
});

