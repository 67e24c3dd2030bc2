// known_hosts lookup (plain and hashed entries) and trust-on-first-use when asked for.
import { readFileSync, appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { dirname } from 'node:path';

export interface KnownKey {
  type: string;
  blob: Buffer;
}

/** How OpenSSH names a host in known_hosts: "addr" on port 22, "[addr]:port" otherwise. */
export function hostPattern(address: string, port: number): string {
  return port === 22 ? address : `[${address}]:${port}`;
}

function matchesHost(field: string, name: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    const h = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return h === hash;
  }
  const names = field.split(',');
  // Negations and wildcards are rare in machine-written files; support the plain forms.
  if (names.some((n) => n === `!${name}`)) return false;
  return names.some((n) => n === name || (n.includes('*') && new RegExp(`^${n.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`).test(name)));
}

interface Entry {
  revoked?: boolean;
  hosts: string;
  type: string;
  blob: Buffer;
}

// Parsed once per file content: with hundreds of hosts, parsing the file per host adds up.
const parsed = new Map<string, { text: string; entries: Entry[] }>();

function entries(file: string): Entry[] {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, 'utf8');
  const hit = parsed.get(file);
  if (hit && hit.text === text) return hit.entries;
  const out: Entry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const parts = line.split(/\s+/);
    let i = 0;
    const revoked = parts[0] === '@revoked';
    if (parts[0]?.startsWith('@')) {
      if (!revoked) continue; // @cert-authority: host certificates are not supported
      i = 1;
    }
    const [hosts, type, b64] = [parts[i], parts[i + 1], parts[i + 2]];
    if (hosts && type && b64) out.push({ revoked, hosts, type, blob: Buffer.from(b64, 'base64') });
  }
  parsed.set(file, { text, entries: out });
  return out;
}

export function lookupKnownHosts(file: string, address: string, port: number): KnownKey[] {
  const name = hostPattern(address, port);
  const all = entries(file);
  // A key marked @revoked is never accepted, whatever other lines say.
  const revoked = all.filter((e) => e.revoked && (e.hosts === '*' || matchesHost(e.hosts, name))).map((e) => e.blob);
  return all
    .filter((e) => !e.revoked && matchesHost(e.hosts, name) && !revoked.some((r) => r.equals(e.blob)))
    .map((e) => ({ type: e.type, blob: e.blob }));
}

/** The key type is the first length-prefixed string of the wire-format blob. */
export function keyType(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const n = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + n).toString('latin1');
}

export function fingerprint(blob: Buffer): string {
  // OpenSSH prints base64 of the sha256 without padding.
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

export function appendKnownHost(file: string, address: string, port: number, blob: Buffer): void {
  mkdirSync(dirname(file), { recursive: true });
  // Hash the name like `HashKnownHosts yes` would, so the file does not list the lab's hosts.
  const salt = randomBytes(20);
  const hash = createHmac('sha1', salt).update(hostPattern(address, port)).digest('base64');
  appendFileSync(file, `|1|${salt.toString('base64')}|${hash} ${keyType(blob)} ${blob.toString('base64')}\n`, { mode: 0o600 });
}
