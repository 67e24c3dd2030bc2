// Types of runner/launch.mjs (plain JavaScript so that Node loads it without a TypeScript loader).
/** The source of the zx hook a user repo's .npmrc may hold (examples/my-lab/.npmrc; runner/zx-hook.mjs says what it does). */
export declare const ZX_HOOK: string;
/** The node option examples/my-lab/.npmrc sets: `--import=data:text/javascript,...` (ZX_HOOK). */
export declare function zxHookOption(): string;
/** `file` when it is a playbook of this checkout that the bundle can run, else null. */
export declare function bundleable(file: string): string | null;
/** tsx's ESM loader, registered in this process. */
export declare function registerTsx(): Promise<void>;
/** The cached bundle of `file` run with `args`, or null. */
export declare function tryBundle(file: string, args: string[]): Promise<string | null>;
/** Runs a TypeScript script in this process as `node <script> ...args` would. */
export declare function runPlaybook(script: string, args: string[]): Promise<void>;
/** Imports a bundle, then exits the process with the playbook's exit code. */
export declare function runBundle(out: string): Promise<never>;
/** `node --import=phoenix/boot`: the bundle for a playbook, tsx for anything else. */
export declare function boot(): Promise<void>;
