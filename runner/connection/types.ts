import type { Secret } from '../secret.ts';

export interface ExecOptions {
  /** Bytes or text fed to the command's stdin (never placed on a command line). */
  stdin?: string | Buffer | Secret;
  /** Environment for the command; Secret values are exported from stdin, not argv. */
  env?: Record<string, string | Secret>;
  cwd?: string;
  /** Run as root through sudo (default: the host's `become`). */
  become?: boolean;
  /** Seconds before the command is abandoned (default 600). */
  timeout?: number;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Raw stdout, for binary content. */
  stdoutBuffer: Buffer;
}

export interface Connection {
  readonly hostName: string;
  exec(cmd: string, opts?: ExecOptions): Promise<ExecResult>;
  /** Kills the process groups of the commands running now (second Ctrl-C); true if there were any. */
  abort(): Promise<boolean>;
  close(): Promise<void>;
}

/** The host could not be reached or authenticated: the host is "unreachable", not "failed". */
export class ConnectionError extends Error {
  constructor(
    readonly hostName: string,
    message: string,
  ) {
    super(`${hostName}: ${message}`);
    this.name = 'ConnectionError';
  }
}
