// Types of ctl.mjs.
export declare function agentCommand(args: string[], out?: (s: string) => void, err?: (s: string) => void): Promise<number>;
