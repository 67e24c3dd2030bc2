// `phoenix agent status|stop`: asks the warm-connection agent (runner/agent/daemon.ts) over its
// socket. Plain JavaScript: no TypeScript loader for a status line.
// Exit codes: 0 done; 3 no agent runs (status; stop then has nothing to do and exits 0); 4 usage;
// 1 the agent did not answer properly.
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { agentDir, AgentDirError, checkDir, checkSocket, formatDuration, socketPath } from './paths.mjs';

const USAGE = `usage: phoenix agent status|stop [--json]

  status   the agent's pid, socket, and the SSH connections it holds (idle for how long)
  stop     close every held connection and end the agent

The agent keeps SSH connections warm between runs started with --agent or PHOENIX_AGENT=1
(docs/agent.md). Its socket: $PHOENIX_AGENT_DIR, else $XDG_RUNTIME_DIR/phoenix-agent, else
/tmp/phoenix-agent-$UID (a 0700 directory of the user).
`;

function ask(path, msg) {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let buf = '';
    const t = setTimeout(() => (s.destroy(), reject(new Error(`the agent at ${path} did not answer within 5s`))), 5000);
    s.setEncoding('utf8');
    s.on('connect', () => s.write(`${JSON.stringify(msg)}\n`));
    s.on('data', (d) => {
      buf += d;
      const i = buf.indexOf('\n');
      if (i >= 0) {
        clearTimeout(t);
        s.end();
        try {
          resolve(JSON.parse(buf.slice(0, i)));
        } catch (e) {
          reject(e);
        }
      }
    });
    s.on('error', (e) => (clearTimeout(t), reject(e)));
  });
}

/** Runs the subcommand; returns the exit code. */
export async function agentCommand(args, out = (s) => process.stdout.write(s), err = (s) => process.stderr.write(s)) {
  const json = args.includes('--json');
  const rest = args.filter((a) => a !== '--json');
  const [sub, ...extra] = rest;
  if (sub === '-h' || sub === '--help' || sub === 'help') {
    out(USAGE);
    return 0;
  }
  if ((sub !== 'status' && sub !== 'stop') || extra.length) {
    err(`phoenix agent: ${sub ? `unknown ${extra.length ? `argument "${extra[0]}"` : `subcommand "${sub}"`}` : 'missing subcommand'}\n${USAGE}`);
    return 4;
  }
  const dir = agentDir();
  const path = socketPath(dir);
  if (!existsSync(dir)) return notRunning(sub, path, json, out);
  try {
    checkDir(dir, { create: false });
    checkSocket(path);
  } catch (e) {
    if (e instanceof AgentDirError) {
      err(`phoenix agent: ${e.message}\n`);
      return 1;
    }
    return notRunning(sub, path, json, out);
  }
  let r;
  try {
    r = await ask(path, { op: sub });
  } catch (e) {
    if (e.code === 'ECONNREFUSED' || e.code === 'ENOENT') return notRunning(sub, path, json, out);
    err(`phoenix agent: ${e.message}\n`);
    return 1;
  }
  if (json) {
    out(`${JSON.stringify(r, null, 2)}\n`);
    return 0;
  }
  if (sub === 'stop') {
    out(`phoenix agent: stopped (pid ${r.pid}); its connections are closed\n`);
    return 0;
  }
  const up = formatDuration(Date.now() - Date.parse(r.startedAt));
  out(`phoenix agent: running, pid ${r.pid}, socket ${r.socket}, up ${up}, idle expiry ${formatDuration(r.idleMs)}\n`);
  out(`  ${r.handshakes} SSH connection${r.handshakes === 1 ? '' : 's'} made, ${r.reuses} reuse${r.reuses === 1 ? '' : 's'}, ${r.clients} run connection${r.clients === 1 ? '' : 's'} open now\n`);
  if (!r.hosts.length) out('  holds no connection\n');
  const w = Math.max(4, ...r.hosts.map((h) => h.host.length));
  for (const h of r.hosts) {
    const where = `${h.user}@${h.port === 22 ? h.address : `[${h.address}]:${h.port}`}`;
    const state = h.state === 'idle' ? `idle ${formatDuration(h.idleForMs)} (closes in ${formatDuration(h.expiresInMs)})` : 'in use by a run';
    out(`  ${h.host.padEnd(w)}  ${where}  ${state}, reused ${h.reuses}×${h.lost ? ', LOST' : ''}\n`);
  }
  return 0;
}

function notRunning(sub, path, json, out) {
  if (json) out(`${JSON.stringify({ running: false, socket: path })}\n`);
  else out(`phoenix agent: not running (no agent answers on ${path})\n`);
  return sub === 'status' ? 3 : 0;
}
