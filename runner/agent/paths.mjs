// Where the warm-connection agent's socket lives, and the checks that make it safe to use.
// Plain JavaScript: `phoenix agent status|stop` (bin/phoenix.mjs) needs no TypeScript loader.
//
// The socket sits in a directory only its user can enter (like ssh-agent's): 0700, owned by the
// user, not a symlink. A directory that is not so is refused, never "fixed": someone else made it.
import { lstatSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** $PHOENIX_AGENT_DIR, else $XDG_RUNTIME_DIR/phoenix-agent, else /tmp/phoenix-agent-$UID. */
export function agentDir(env = process.env) {
  if (env.PHOENIX_AGENT_DIR) return resolve(env.PHOENIX_AGENT_DIR);
  const uid = process.getuid?.() ?? 0;
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'phoenix-agent');
  return `/tmp/phoenix-agent-${uid}`;
}

export function socketPath(dir) {
  return join(dir, 'agent.sock');
}

export function logPath(dir) {
  return join(dir, 'agent.log');
}

export class AgentDirError extends Error {
  constructor(message) {
    super(message);
    this.name = 'AgentDirError';
  }
}

/**
 * Creates the directory (0700) when it is missing, and throws an AgentDirError naming the
 * problem when it is not a directory of this user that only this user can enter.
 */
export function checkDir(dir, { create = true } = {}) {
  const uid = process.getuid?.() ?? 0;
  if (create) {
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (e) {
      if (e.code !== 'EEXIST') throw new AgentDirError(`agent directory ${dir}: cannot create it: ${e.code ?? e.message}`);
    }
  }
  let st;
  try {
    st = lstatSync(dir);
  } catch (e) {
    throw new AgentDirError(`agent directory ${dir}: ${e.code === 'ENOENT' ? 'does not exist' : (e.code ?? e.message)}`);
  }
  if (st.isSymbolicLink()) throw new AgentDirError(`agent directory ${dir} is a symlink; refusing to use it`);
  if (!st.isDirectory()) throw new AgentDirError(`agent directory ${dir} is not a directory; refusing to use it`);
  if (st.uid !== uid) throw new AgentDirError(`agent directory ${dir} is owned by uid ${st.uid}, not by you (uid ${uid}); refusing to use it`);
  const mode = st.mode & 0o777;
  if ((mode & 0o077) !== 0)
    throw new AgentDirError(`agent directory ${dir} has mode ${mode.toString(8).padStart(4, '0')}; it must be 0700 (others could reach the socket); refusing to use it`);
  return dir;
}

/** The socket, when it is a socket of this user; else an AgentDirError (or ENOENT: no agent). */
export function checkSocket(path) {
  const uid = process.getuid?.() ?? 0;
  const st = lstatSync(path);
  if (!st.isSocket()) throw new AgentDirError(`${path} is not a socket; refusing to use it`);
  if (st.uid !== uid) throw new AgentDirError(`${path} is owned by uid ${st.uid}, not by you (uid ${uid}); refusing to use it`);
  return path;
}

/** "10m", "90s", "1h", "600" (seconds), "0" -> milliseconds; undefined for anything else. */
export function parseDuration(text) {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(String(text));
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's'];
  return Math.round(n * unit);
}

export function formatDuration(ms) {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ''}`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60) ? `${Math.floor((s % 3600) / 60)}m` : ''}`;
}

/** Default idle expiry of a held connection: 10 minutes. */
export const DEFAULT_IDLE_MS = 10 * 60_000;
