// Portainer (docs/ARCHITECTURE.md: portainer_service, server on VM 1001, agent on every node):
// a step-ca certificate for :9443 (certbot over ACME http-01 on the manager, roles/certs), then
// its stack. By default Portainer owns the stacks (the seed's flow): a one-off Portainer creates
// Portainer's own stack on a fresh swarm and hands over to it (./bootstrap.ts), and every stack
// goes through its API exactly as `phoenix sync` does (./api.ts, ./sync.ts), so site and sync
// agree. With `swarm.deployStacksWith: 'docker'` the stack is deployed with `docker stack
// deploy` instead (stacks/docker.ts); either way the plan is stacks/plan.ts (docs/stacks.md).
// The admin password is a docker secret read by --admin-password-file; the server mounts the
// manager's /etc/letsencrypt read-only for its certificate, and a renewal restarts the server's
// task (certbot deploy hook: `docker service update --force`).
import { role, shQuote, task } from '../../runner/index.ts';
import { engineGet } from '../swarm/state.ts';
import { dockerStack } from '../../stacks/docker.ts';
import type { CertVars } from '../certs/vars.ts';
import { portainerStack, preparePortainerStack } from '../../stacks/portainer.ts';
import { certificateTasks, servedCertificate } from '../certs/index.ts';
import { PORTAINER_CERT, portainerVarsSchema } from './vars.ts';
import { bootstrapTask, portainerApi, stackAction, stacksViaPortainer, type SyncVars } from './api.ts';

/** What the portainer role reads: the Portainer API's vars (./api.ts) and the certificate settings. */
export type PortainerRoleVars = SyncVars & Pick<CertVars, 'certs'>;
type V = PortainerRoleVars;

export default role<V>({
  name: 'portainer',
  vars: portainerVarsSchema,
  // The admin password's secret name (scrypt, ~70 ms of CPU) in the thread pool from the run's start.
  prepare: preparePortainerStack,
  tasks: [
    ...certificateTasks<V>({
      certName: PORTAINER_CERT,
      names: ({ vars }) => vars.portainer.tls.names,
      // Nothing listens on :80 of the manager: certbot answers the challenge itself.
      challenge: { standalone: { port: 80 } },
      deployHook: 'docker service update --force --detach portainer_service_portainer >/dev/null 2>&1 || true',
    }),
    // A renewal above restarted Portainer's task detached (the hook): the API tasks below wait for
    // the restarted task to serve, instead of meeting it down. A fresh swarm has no service yet.
    task<V>({
      name: 'portainer serves again before its API is used',
      when: async ({ probe }) => (await probe(`${engineGet(`/services/${SERVER}`)} >/dev/null 2>&1`)).code === 0,
      do: ({ vars, host }) => portainerServes(vars, host),
    }),
    bootstrapTask(stacksViaPortainer),
    task<V>({
      name: 'portainer stack',
      uses: [portainerApi],
      do: (env) => (stacksViaPortainer(env) ? stackAction('portainer', portainerStack, true)(env) : dockerStack({ stack: () => portainerStack(env.vars), stateDir: env.vars.swarm.stackDir })),
    }),
    // The certificate hook restarts Portainer's task detached: the run ends only once :9443 presents the current certificate (issue 16, item 4).
    task<V>({
      name: 'portainer presents its certificate',
      do: ({ vars, host }) => portainerServes(vars, host),
    }),
  ],
});

/** Portainer's server service (the stack's `portainer` service). */
const SERVER = 'portainer_service_portainer';

/** :9443 presents the current certificate, from the task the hook's `service update --force` started (not the one it replaces). */
function portainerServes(vars: V, host: { name: string; address: string }) {
  return servedCertificate(PORTAINER_CERT, {
    address: vars.swarm.advertise[host.name] ?? host.address,
    port: vars.portainer.httpsPort,
    serverName: vars.portainer.tls.names[0]!,
    // Through the Engine API on the manager's socket (curl: ~15 ms a call, the docker CLI ~45 ms):
    // no update in progress (UpdateStatus.State), and a task desired running is running.
    settled:
      `s=$(${engineGet(`/services/${SERVER}`)}) || exit 1; ` +
      `case $s in *'"UpdateStatus":{"State":"updating"'*|*'"UpdateStatus":{"State":"rollback_started"'*|*'"UpdateStatus":{"State":"paused"'*|*'"UpdateStatus":{"State":"rollback_paused"'*) exit 1;; esac; ` +
      `${engineGet('/tasks')} -G --data-urlencode ${shQuote(`filters=${JSON.stringify({ service: [SERVER], 'desired-state': ['running'] })}`)} | grep -q '"State":"running"'`,
  });
}
