#!/usr/bin/env node
// phoenix: the command line of the playbooks.
//   phoenix sync [all|portainer|qdrant] [options]   -> playbooks/sync.ts
//   phoenix site [options]                          -> playbooks/site.ts
// The playbook runs in a child node with tsx's loader, both resolved relative to this file, so
// `npx phoenix ...` works from any directory of the checkout after `npm ci`. The child's exit
// code (0 ok, 2 failed, 3 unreachable, 4 usage; see README) is this command's.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const commands = { sync: 'playbooks/sync.ts', site: 'playbooks/site.ts' };
const usage = `usage: phoenix <command> [options]

  phoenix sync [all|portainer|qdrant] [options]   the stacks through the Portainer API
  phoenix site [options]                          the full run (playbooks/site.ts)

phoenix <command> --help lists the options.
`;

const [cmd, ...rest] = process.argv.slice(2);
if (!cmd || cmd === '-h' || cmd === '--help' || cmd === 'help') {
  process.stdout.write(usage);
  process.exit(cmd ? 0 : 4);
}
if (!Object.hasOwn(commands, cmd)) {
  process.stderr.write(`phoenix: unknown command "${cmd}"\n${usage}`);
  process.exit(4);
}

let tsx;
try {
  tsx = import.meta.resolve('tsx');
} catch {
  process.stderr.write('phoenix: the tsx package is missing: run `npm ci` in the checkout first\n');
  process.exit(1);
}
// tsx is registered here; an inherited NODE_OPTIONS --import of tsx or of the boot loader (from
// .npmrc under npx) would resolve from the caller's directory, so it is dropped.
const nodeOptions = (process.env.NODE_OPTIONS ?? '').replace(/--import[= ](tsx|phoenix-boot|phoenix\/boot)(?=\s|$)/g, '').trim();
const env = { ...process.env };
if (nodeOptions) env.NODE_OPTIONS = nodeOptions;
else delete env.NODE_OPTIONS;

// load-errors first: a syntax error or a bad import in a role is reported as the user's (exit 4).
const loadErrors = new URL('../runner/load-errors.mjs', import.meta.url).href;
const child = spawn(process.execPath, [`--import=${loadErrors}`, `--import=${tsx}`, join(root, commands[cmd]), ...rest], { stdio: 'inherit', env });
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
child.on('error', (e) => {
  process.stderr.write(`phoenix: cannot start node: ${e.message}\n`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  if (signal) process.kill(process.pid, signal);
  else process.exit(code ?? 1);
});
