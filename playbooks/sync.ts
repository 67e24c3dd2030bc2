// `phoenix sync [all|portainer|qdrant]`: the swarm stacks through the Portainer API.
//   npx phoenix sync all --inventory lab [--check] [--diff] [--json FILE] [--plain] ...
//   npx phoenix sync qdrant --inventory lab
// One play on the Portainer host (VM 1001, the swarm manager): each stack is one task whose
// requests go from this machine to the Portainer API (axios, TLS verified against the step-ca
// root); the product health checks run on the manager. Flags, output and exit codes are those
// of every playbook (runner/cli.ts); the target is the only extra argument.
import { isMain, main, play, playbook, role, EXIT, type Role } from '../runner/index.ts';
// The runner's flags that take a value (so a value is not mistaken for the target).
import { scriptArgs, VALUE_FLAGS } from '../runner/cli.ts';
import { bootstrapTask, stackTask, type SyncVars as ApiVars } from '../roles/portainer/api.ts';
import type { QdrantVars } from '../roles/qdrant/vars.ts';
import { portainerStack } from '../stacks/portainer.ts';
import { qdrantStack } from '../stacks/qdrant.ts';

// The tasks and their helpers live with the portainer role (site runs the same ones unless the
// inventory says swarm.deployStacksWith: 'docker'); re-exported for the tests and tools.
export { apiOptions, oneOffFor, syncSpec, type PortainerApiVars } from '../roles/portainer/api.ts';

export const TARGETS = ['all', 'portainer', 'qdrant'] as const;
export type Target = (typeof TARGETS)[number];

/** What sync reads: the Portainer API's vars and Qdrant's (its stack). */
export type SyncVars = ApiVars & Pick<QdrantVars, 'qdrant'>;

export const portainerRole = role<SyncVars>({ name: 'portainer', tags: ['sync'], tasks: [bootstrapTask(), stackTask('portainer', (v) => portainerStack(v), true)] });

export const qdrantRole: Role<SyncVars> = role<SyncVars>({ name: 'qdrant', tags: ['sync'], tasks: [stackTask('qdrant', (v) => qdrantStack(v))] });
/** In `sync all`, after portainer's bootstrap: through the one-off while it is on (it reads the bootstrap's output). */
const qdrantAfterPortainer: Role<SyncVars> = role<SyncVars>({ name: 'qdrant', tags: ['sync'], tasks: [stackTask('qdrant', (v) => qdrantStack(v), true)] });

export function syncPlaybook(target: Target) {
  const roles = target === 'all' ? [portainerRole, qdrantAfterPortainer] : target === 'portainer' ? [portainerRole] : [qdrantRole];
  // Portainer first: its own stack, then what it manages (docs/ARCHITECTURE.md, order of a run).
  return playbook<SyncVars>(`sync ${target}`, [play<SyncVars>({ name: `sync ${target}`, hosts: 'portainer', roles })]);
}


/** Splits `[target] [flags]` (the target may come anywhere); throws a usage message. */
export function splitTarget(args: string[]): { target: Target; rest: string[] } {
  const rest: string[] = [];
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (a.startsWith('-')) {
      rest.push(a);
      if (VALUE_FLAGS.has(a) && i + 1 < args.length) rest.push(args[++i]!);
      continue;
    }
    positional.push(a);
  }
  if (positional.length > 1) throw new Error(`one target expected (all, portainer or qdrant), got: ${positional.join(' ')}`);
  const t = positional[0] ?? 'all';
  if (!(TARGETS as readonly string[]).includes(t)) throw new Error(`unknown target "${t}": expected all, portainer or qdrant`);
  return { target: t as Target, rest };
}

export const SYNC_HELP = `usage: phoenix sync [all|portainer|qdrant] [options]     (node --import=phoenix/boot playbooks/sync.ts ...)

Deploys or updates the swarm stacks through the Portainer API: finds the stack by name, updates
it only when its stack file or Env differs, creates it when absent, waits until every task runs
and the product answers. Default target: all. --check sends only reads; --diff shows the compose
diff. The options are those of every playbook:
`;

export async function syncMain(args = scriptArgs()): Promise<number> {
  let split;
  try {
    split = splitTarget(args);
  } catch (e) {
    process.stderr.write(`phoenix sync: ${(e as Error).message}\nrun with --help for the options\n`);
    return (process.exitCode = EXIT.USAGE);
  }
  if (split.rest.includes('--help') || split.rest.includes('-h')) process.stdout.write(SYNC_HELP);
  return main(syncPlaybook(split.target), split.rest);
}

if (isMain(import.meta.url)) await syncMain();
