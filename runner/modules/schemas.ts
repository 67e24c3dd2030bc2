// The JSON Schema of every module's arguments, checked when a playbook is planned (before any
// host is touched) and again when a task's `do: ({ vars }) => ...` builds its module call.
// Playbooks run through `npx zx` without tsc, so these are what catches `state: 'dirctory'`.
//
// Edit here, then `node --import=tsx runner/modules/gen-schemas.ts` to regenerate runner/modules/schemas.generated.js (a
// standalone ajv validator: runs never load or compile ajv); test/unit/module-args.test.ts
// checks it is fresh. Each `properties` is checked by tsc against the module's options type
// (`satisfies Props<...>`): an option added to a module's interface must be added here too.
//
// Enum order is the order the error message lists them in. Values that are not JSON (Buffer,
// Secret, functions, a StackDefinition) get `{}`: only their presence is known here.
import type { AcmeCertOptions } from './acme_cert.ts';
import type { AptOptions } from './apt.ts';
import type { BlockInFileOptions } from './blockinfile.ts';
import type { CommandOptions } from './command.ts';
import type { CopyOptions } from './copy.ts';
import type { FetchOptions } from './fetch.ts';
import type { FileOptions } from './file.ts';
import type { GetUrlOptions } from './get_url.ts';
import type { HttpOptions } from './http.ts';
import type { InstallBinaryOptions } from './install_binary.ts';
import type { SystemdOptions } from './systemd.ts';
import type { TemplateOptions } from './template.ts';
import type { WaitForOptions } from './wait_for.ts';

/** Every key of an options type, each with its schema: tsc fails when one is missing or extra. */
type Props<T> = { [K in keyof Required<T>]: object };

const str = { type: 'string' } as const;
const nonEmpty = { type: 'string', minLength: 1 } as const;
const bool = { type: 'boolean' } as const;
const seconds = { type: 'number', minimum: 0 } as const;
const anything = {} as const;
/** A string of octal digits ("0644", "755") or a number (0o644); see modeProblem for decimals. */
const mode = { type: ['string', 'integer'], pattern: '^0?[0-7]{3,4}$', minimum: 0, maximum: 0o7777 } as const;
const owner = { type: 'string', minLength: 1 } as const;
const stringMap = { type: 'object', additionalProperties: anything } as const;

const obj = <P extends Record<string, object>>(properties: P, required: (keyof P & string)[] = []) =>
  ({ type: 'object', additionalProperties: false, required, properties }) as const;

export const commandOptionsSchema = obj({
  creates: nonEmpty,
  removes: nonEmpty,
  unless: nonEmpty,
  onlyIf: nonEmpty,
  stdin: anything,
  env: stringMap,
  chdir: nonEmpty,
  timeout: seconds,
  changedWhen: anything,
  readOnly: bool,
  okCodes: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 255 } },
} satisfies Props<CommandOptions>);

export const moduleSchemas = {
  shell: commandOptionsSchema,
  command: commandOptionsSchema,
  file: obj(
    {
      path: nonEmpty,
      state: { enum: ['file', 'directory', 'link', 'absent', 'touch'] },
      src: nonEmpty,
      force: bool,
      mode,
      owner,
      group: owner,
    } satisfies Props<FileOptions>,
    ['path', 'state'],
  ),
  copy: obj(
    { dest: nonEmpty, content: anything, src: nonEmpty, mode, owner, group: owner, validate: nonEmpty, force: bool } satisfies Props<CopyOptions>,
    ['dest'],
  ),
  template: obj(
    { src: nonEmpty, dest: nonEmpty, vars: { type: 'object' }, mode, owner, group: owner, validate: nonEmpty } satisfies Props<TemplateOptions>,
    ['src', 'dest', 'vars'],
  ),
  apt: obj(
    {
      // A package name, maybe "name=version" or "name:arch"; never an option ("-o ...").
      name: { type: ['string', 'array'], pattern: '^[A-Za-z0-9]', minItems: 1, items: { type: 'string', pattern: '^[A-Za-z0-9]' } },
      state: { enum: ['present', 'absent', 'latest'] },
      cacheValidTime: { type: 'number', minimum: 0 },
      installRecommends: bool,
      lockTimeout: { type: 'number', minimum: 0 },
    } satisfies Props<AptOptions>,
    ['name'],
  ),
  systemd: obj(
    { name: nonEmpty, state: { enum: ['started', 'stopped', 'restarted', 'reloaded'] }, enabled: bool, daemonReload: bool } satisfies Props<SystemdOptions>,
    ['name'],
  ),
  get_url: obj(
    {
      url: nonEmpty,
      dest: nonEmpty,
      sha256: { type: 'string', pattern: '^[0-9a-fA-F]{64}$' },
      checksumUrl: nonEmpty,
      mode,
      owner,
      group: owner,
      timeout: seconds,
    } satisfies Props<GetUrlOptions>,
    ['url', 'dest'],
  ),
  wait_for: obj(
    {
      port: { type: 'integer', minimum: 1, maximum: 65535 },
      host: nonEmpty,
      url: nonEmpty,
      status: { type: 'integer', minimum: 100, maximum: 599 },
      ca: nonEmpty,
      timeout: seconds,
      from: { enum: ['host', 'control'] },
    } satisfies Props<WaitForOptions>,
  ),
  http: obj(
    {
      url: nonEmpty,
      // axios's Method, either case.
      method: { enum: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'PURGE', 'LINK', 'UNLINK', 'get', 'post', 'put', 'patch', 'delete', 'head', 'options', 'purge', 'link', 'unlink'] },
      headers: stringMap,
      body: anything,
      status: { type: 'array', items: { type: 'integer', minimum: 100, maximum: 599 } },
      ca: nonEmpty,
      timeout: seconds,
      changedWhen: anything,
    } satisfies Props<HttpOptions>,
    ['url'],
  ),
  install_binary: obj(
    {
      dest: nonEmpty,
      // One of: {url, sha256, binaryInArchive}, {url, checksumsUrl, binaryInArchive}, {localPath, sha256}.
      source: obj({ url: nonEmpty, sha256: { type: 'string', pattern: '^[0-9a-fA-F]{64}$' }, checksumsUrl: nonEmpty, binaryInArchive: nonEmpty, localPath: nonEmpty }),
      timeout: seconds,
    } satisfies Props<InstallBinaryOptions>,
    ['dest', 'source'],
  ),
  fetch: obj({ src: nonEmpty, dest: nonEmpty, mode } satisfies Props<FetchOptions>, ['src', 'dest']),
  blockinfile: obj({ path: nonEmpty, block: str, marker: nonEmpty, create: bool } satisfies Props<BlockInFileOptions>, ['path', 'block']),
  acme_cert: obj(
    {
      certName: { type: 'string', pattern: '^[A-Za-z0-9._-]+$' },
      names: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^[A-Za-z0-9.-]+$' } },
      directory: nonEmpty,
      challenge: obj({
        webroot: nonEmpty,
        standalone: obj({ port: { type: 'integer', minimum: 1, maximum: 65535 }, address: nonEmpty }),
      }),
      renewBefore: { type: 'number', exclusiveMinimum: 0 }, // > 1: always renew (what the edge e2e does to force one)
      deployHook: nonEmpty,
      caBundle: nonEmpty,
      email: nonEmpty,
      lockTimeout: { type: 'number', minimum: 0 },
    } satisfies Props<AcmeCertOptions>,
    ['certName', 'names', 'directory', 'challenge'],
  ),
  // stacks/docker.ts's dockerStack() (above the runner: its options type is not imported here).
  docker_stack: obj({ stack: anything, stateDir: nonEmpty, timeout: seconds }, ['stack']),
} as const;

export type ModuleName = keyof typeof moduleSchemas;
