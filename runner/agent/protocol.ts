// The agent's wire protocol: one JSON object per line over its Unix socket.
//
// A run opens one socket connection per host and leases that host's SSH connection on it:
//   client: {op:'lease', host, knownHosts, acceptNewHostKeys, idleMs, authSock}
//   agent:  {op:'leased', reused}            or {op:'error', error}
//   client: {op:'exec', id, cmd, opts}       agent: {op:'result', id, code, stdout, stderr} | {op:'result', id, error}
//   client: {op:'abort', id}                 agent: {op:'aborted', id, any}
// Ending the socket ends the lease: the connection goes back to the agent's idle set (unless it
// was aborted or lost, or a command was still running: then it is aborted and dropped).
// Also: {op:'status'} -> {op:'status', ...}, {op:'stop'} -> {op:'stopped'}.
// Secrets (stdin, env, the become password) cross the socket only inside these messages.
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import { ConnectionError, type ExecOptions, type ExecResult } from '../connection/types.ts';
import { AbortedError } from '../connection/shell.ts';
import { isSecret, Secret } from '../secret.ts';

/** What the agent needs of an inventory host to connect to it. */
export interface LeaseHost {
  name: string;
  address: string;
  port: number;
  user: string;
  key?: string;
  become: boolean;
  /** The become password: only ever in the lease message. */
  becomePassword?: string;
  connectTimeout: number;
  keepaliveInterval: number;
  keepaliveCountMax: number;
}

export interface LeaseRequest {
  op: 'lease';
  host: LeaseHost;
  knownHosts: string;
  acceptNewHostKeys: boolean;
  idleMs: number;
  /** The run's $SSH_AUTH_SOCK (hosts without a key authenticate through it). */
  authSock?: string;
}

type Value = { s: string } | { b: string } | { secret: string };

export interface WireExecOptions {
  stdin?: Value;
  env?: Record<string, Value>;
  cwd?: string;
  become?: boolean;
  timeout?: number;
  readOnly?: boolean;
}

export interface WireError {
  name: string;
  message: string;
  hostName?: string;
}

function enc(v: string | Buffer | Secret): Value {
  if (isSecret(v)) return { secret: v.reveal() };
  if (Buffer.isBuffer(v)) return { b: v.toString('base64') };
  return { s: String(v) };
}

function dec(v: Value): string | Buffer | Secret {
  if ('secret' in v) return new Secret(v.secret);
  if ('b' in v) return Buffer.from(v.b, 'base64');
  return v.s;
}

export function encodeOptions(o: ExecOptions = {}): WireExecOptions {
  const w: WireExecOptions = {};
  if (o.stdin !== undefined) w.stdin = enc(o.stdin);
  if (o.env) w.env = Object.fromEntries(Object.entries(o.env).map(([k, v]) => [k, enc(v)]));
  if (o.cwd !== undefined) w.cwd = o.cwd;
  if (o.become !== undefined) w.become = o.become;
  if (o.timeout !== undefined) w.timeout = o.timeout;
  if (o.readOnly !== undefined) w.readOnly = o.readOnly;
  return w;
}

export function decodeOptions(w: WireExecOptions = {}): ExecOptions {
  const o: ExecOptions = {};
  if (w.stdin) o.stdin = dec(w.stdin);
  if (w.env) o.env = Object.fromEntries(Object.entries(w.env).map(([k, v]) => [k, dec(v) as string | Secret]));
  if (w.cwd !== undefined) o.cwd = w.cwd;
  if (w.become !== undefined) o.become = w.become;
  if (w.timeout !== undefined) o.timeout = w.timeout;
  if (w.readOnly !== undefined) o.readOnly = w.readOnly;
  return o;
}

export function encodeResult(r: ExecResult): { code: number; stdout: string; stderr: string } {
  return { code: r.code, stdout: r.stdoutBuffer.toString('base64'), stderr: r.stderr };
}

export function decodeResult(m: { code: number; stdout: string; stderr: string }): ExecResult {
  const buf = Buffer.from(m.stdout, 'base64');
  return { code: m.code, stdout: buf.toString('utf8'), stderr: m.stderr, stdoutBuffer: buf };
}

export function encodeError(e: unknown): WireError {
  const err = e as Error & { hostName?: string };
  return { name: err?.name ?? 'Error', message: err?.message ?? String(e), ...(err instanceof ConnectionError ? { hostName: err.hostName } : {}) };
}

/** The same class and the same message as the error thrown in the agent. */
export function decodeError(w: WireError): Error {
  let e: Error;
  if (w.name === 'ConnectionError') e = new ConnectionError(w.hostName ?? '', '');
  else if (w.name === 'AbortedError') e = new AbortedError('');
  else e = new Error('');
  e.message = w.message;
  return e;
}

/**
 * The identity of a held connection: a lease reuses one only when all of this is the same. The
 * private key's content and the become password count through hashes (salted with the agent's
 * own random salt, so the status never shows a password's hash that could be guessed offline).
 */
export function poolKey(r: LeaseRequest, keyContentHash: string, salt: Buffer): string {
  const h = r.host;
  const pw = h.becomePassword === undefined ? '' : createHash('sha256').update(salt).update(h.becomePassword).digest('hex');
  return JSON.stringify([h.name, h.user, h.address, h.port, h.key ?? '', keyContentHash, r.knownHosts, h.become, pw, h.connectTimeout, h.keepaliveInterval, h.keepaliveCountMax, h.key ? '' : (r.authSock ?? '')]);
}

/** Reads newline-framed JSON messages from a socket. */
export function onMessages(sock: Socket, handle: (m: any) => void, onBad?: (e: Error) => void): void {
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('data', (d: string) => {
    buf += d;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (!line) continue;
      let m: unknown;
      try {
        m = JSON.parse(line);
      } catch (e) {
        onBad?.(e as Error);
        continue;
      }
      handle(m);
    }
  });
}

export function send(sock: Socket, m: unknown): void {
  if (!sock.destroyed && sock.writable) sock.write(`${JSON.stringify(m)}\n`);
}
