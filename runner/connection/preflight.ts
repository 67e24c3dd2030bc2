// Checks made before any host is contacted: every selected host's private key (present, a
// file, not readable by others) or ssh-agent, and the known_hosts file. A mistake here is the user's
// inventory, not an unreachable host: all of them are listed at once, and nothing runs.
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import type { Host } from '../inventory.ts';

export interface PreflightOptions {
  knownHosts: string;
  /** With --accept-new-host-keys a missing known_hosts file is created, not an error. */
  acceptNewHostKeys: boolean;
}

function keyProblem(path: string): string | undefined {
  let st;
  try {
    st = statSync(path);
  } catch {
    return `private key ${path} does not exist`;
  }
  if (!st.isFile()) return `private key ${path} is not a file`;
  // Same rule as OpenSSH: a key others can read is refused, not silently used.
  if ((st.mode & 0o077) !== 0) return `private key ${path} has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}; it must be 0600 (chmod 600 ${path})`;
  try {
    accessSync(path, constants.R_OK);
  } catch {
    return `private key ${path} is not readable by this user`;
  }
  return undefined;
}

/** One line per problem (hosts sharing a problem on one line); [] when all is well. */
export function preflight(hosts: Host[], o: PreflightOptions): string[] {
  const byProblem = new Map<string, string[]>();
  const add = (problem: string, host: string) => {
    const l = byProblem.get(problem) ?? [];
    if (!l.includes(host)) l.push(host);
    byProblem.set(problem, l);
  };
  const ssh = hosts.filter((h) => h.connection !== 'local');
  for (const h of ssh) {
    if (h.key) {
      const p = keyProblem(h.key);
      if (p) add(`field "key": ${p}`, h.name);
    } else if (!process.env.SSH_AUTH_SOCK) add('field "key": no key configured and no ssh-agent ($SSH_AUTH_SOCK) available', h.name);
    else if (!existsSync(process.env.SSH_AUTH_SOCK))
      add(`field "key": no key configured, and the ssh-agent socket $SSH_AUTH_SOCK (${process.env.SSH_AUTH_SOCK}) does not exist`, h.name);
    if (h.jump?.key) {
      const p = keyProblem(h.jump.key);
      if (p) add(`field "jump": jump host ${h.jump.name}: ${p}`, h.name);
    }
  }
  const out = [...byProblem].map(([p, names]) => `${names.length > 1 ? 'hosts' : 'host'} ${names.map((n) => `"${n}"`).join(', ')}: ${p}`);
  if (ssh.length && !o.acceptNewHostKeys) {
    let problem: string | undefined;
    try {
      if (statSync(o.knownHosts).isDirectory()) problem = 'is a directory';
      else accessSync(o.knownHosts, constants.R_OK);
    } catch (e) {
      problem ??= (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'is not readable';
    }
    if (problem)
      out.push(
        `known_hosts file ${o.knownHosts} ${problem}: host keys cannot be verified (set "knownHosts" in the inventory, pass --known-hosts FILE, or --accept-new-host-keys to create it and trust first use)`,
      );
  }
  return out;
}
