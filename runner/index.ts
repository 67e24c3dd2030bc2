// The public surface: what roles, playbooks and inventories import.
export { role, task, handler, play, playbook, output, compute } from './dsl.ts';
export type { Role, Task, Handler, Play, Playbook, TaskEnv, TaskOptions, Output } from './dsl.ts';
export { defineInventory, loadInventory, resolveInventory, validateInventory, InventoryError } from './inventory.ts';
export type { Inventory, HostSpec, GroupSpec, Host, Vars } from './inventory.ts';
export { Secret, secret, secretFromEnv, redact } from './secret.ts';
export * from './modules/index.ts';
export { ArgumentError, argumentErrorOf } from './modules/args.ts';
export { replace, restartAndWait, readinessTest, PREVIOUS_SUFFIX, type ReplaceOptions, type ReplaceFile, type ReplaceService, type Readiness, type CameBack } from './modules/replace.ts';
export { needsVars, type VarsSchema, type JsonSchema } from './vars-schema.ts';
export { main, isMain, run, parseCli, parseExtraVars, didYouMean, VALUE_FLAGS, EXIT, type RunOptions, type RunResult } from './cli.ts';
export { resolvePlan, allTags, matchHosts, startAt, SelectionError } from './selection.ts';
export type { Action, ActionContext, ActionResult, FileDiff, TaskResult } from './types.ts';
export { TaskError, NotYetError } from './types.ts';
export { shQuote } from './connection/shell.ts';
