// Fakes for tests of the engine that need no host (test/unit/overlap.test.ts, prepare.test.ts).
import type { Connection, ExecResult } from '../../runner/connection/types.ts';

/** A connection that is never used for commands: the test's actions do their work in memory. */
export const idle: Connection = {
  hostName: 'test',
  async exec(): Promise<ExecResult> {
    return { code: 0, stdout: '', stderr: '', stdoutBuffer: Buffer.from('') };
  },
  async abort() {
    return false;
  },
  async close() {},
};

export interface Gate {
  promise: Promise<void>;
  open(): void;
}

/** A promise a test opens by hand: orders events without timing. */
export function gate(): Gate {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}
