// Types of paths.mjs (plain JavaScript so that `phoenix agent` needs no TypeScript loader).
export declare function agentDir(env?: NodeJS.ProcessEnv): string;
export declare function socketPath(dir: string): string;
export declare function logPath(dir: string): string;
export declare class AgentDirError extends Error {}
export declare function checkDir(dir: string, options?: { create?: boolean }): string;
export declare function checkSocket(path: string): string;
export declare function parseDuration(text: string | number): number | undefined;
export declare function formatDuration(ms: number): string;
export declare const DEFAULT_IDLE_MS: number;
