#!/usr/bin/env node
// phoenix: the command line of the playbooks.
//   phoenix sync [all|portainer|qdrant] [options]   -> playbooks/sync.ts
//   phoenix site [options]                          -> playbooks/site.ts
//   phoenix agent status|stop                       -> runner/agent/ctl.mjs
// `npx phoenix ...` works from any directory of the checkout after `npm ci`.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { install as catchLoadErrors } from '../runner/load-errors.mjs';
import { runPlaybook } from '../runner/launch.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const commands = { sync: 'playbooks/sync.ts', site: 'playbooks/site.ts' };
const usage = `usage: phoenix <command> [options]

  phoenix sync [all|portainer|qdrant] [options]   the stacks through the Portainer API
  phoenix site [options]                          the full run (playbooks/site.ts)
  phoenix agent status|stop                       the warm-connection agent (docs/agent.md)

phoenix <command> --help lists the options.
`;

const [cmd, ...rest] = process.argv.slice(2);
if (!cmd || cmd === '-h' || cmd === '--help' || cmd === 'help') {
  process.stdout.write(usage);
  process.exit(cmd ? 0 : 4);
}
if (cmd === 'agent') {
  const { agentCommand } = await import('../runner/agent/ctl.mjs');
  process.exit(await agentCommand(rest));
}
if (!Object.hasOwn(commands, cmd)) {
  process.stderr.write(`phoenix: unknown command "${cmd}"\n${usage}`);
  process.exit(4);
}

// The playbook runs in this process (no second node): from its cached bundle, or through tsx's
// loader registered here (runner/launch.mjs). Its exit code (0 ok, 2 failed, 3 unreachable,
// 4 usage; see README) is this command's.
// The playbook is imported in this process: a mistake in its code while it loads exits 4.
catchLoadErrors({ force: true });
await runPlaybook(join(root, commands[cmd]), rest);
