// Portainer (docs/ARCHITECTURE.md: portainer_service, server on VM 1001, agent on every node):
// the stack, deployed from the swarm manager with `docker stack deploy` only when something
// differs; the admin password is a docker secret read by --admin-password-file.
import { dockerStack, role, task } from '../../runner/index.ts';
import type { PhoenixVars } from '../../inventory.ts';
import { portainerStack } from '../../stacks/portainer.ts';

type V = PhoenixVars;

export default role<V>({
  name: 'portainer',
  tasks: [task<V>({ name: 'portainer stack', do: ({ vars }) => dockerStack({ stack: () => portainerStack(vars), stateDir: vars.swarm.stackDir }) })],
});
