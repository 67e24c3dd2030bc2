// Types of load-errors.mjs (plain JavaScript so that it can be preloaded before tsx).
export declare const EXIT_USAGE: 4;
export declare const EXIT_INTERNAL: 1;
export declare const LOAD_ERRORS_MODULE: string;
export declare function markStarted(): void;
export declare function describeLoadError(e: unknown): { where?: string; message: string; user: boolean };
export declare function formatLoadError(e: unknown): string;
export declare function reportLoadError(e: unknown, write?: (s: string) => void): number;
export declare function install(options?: { force?: boolean }): void;
