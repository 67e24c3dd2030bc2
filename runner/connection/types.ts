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
  /**
   * The command only reads the host (a probe): it runs in check mode too. Anything not marked
   * so is a change, and the check-mode connection refuses it (CheckModeRefusal).
   */
  readOnly?: boolean;
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
  readonly hostName: string;
  constructor(
    hostName: string,
    message: string,
  ) {
    super(`${hostName}: ${message}`);
    this.hostName = hostName;
    this.name = 'ConnectionError';
  }
}

/**
 * Check mode met a command or request that was not marked read-only: it was not sent. The engine
 * reports the task `unknown`, naming what was held back (redacted).
 */
export class CheckModeRefusal extends Error {
  readonly hostName: string;
  /** What was not run: the command's first line, or "POST https://...", redacted. */
  readonly what: string;
  constructor(hostName: string, what: string) {
    super(`check mode: not run on ${hostName}, not marked read-only: ${what}`);
    this.hostName = hostName;
    this.what = what;
    this.name = 'CheckModeRefusal';
  }
}
