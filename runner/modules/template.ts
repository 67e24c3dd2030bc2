// template: handlebars, strict (a missing variable is an error naming the template and
// the variable), written through copy's atomic path.
import { readFileSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { createRequire } from 'node:module';
import type HandlebarsNS from 'handlebars';
import { Secret } from '../secret.ts';
import type { Action, ActionResult } from '../types.ts';
import { TaskError } from '../types.ts';
import { putFile } from './copy.ts';
import { invalidArgs } from './args.ts';

// Loaded on first render (synchronously): runs without templates don't pay for it.
let hbInstance: typeof HandlebarsNS | undefined;
function hb(): typeof HandlebarsNS {
  if (!hbInstance) {
    const Handlebars = createRequire(import.meta.url)('handlebars') as typeof HandlebarsNS;
    hbInstance = Handlebars.create();
    hbInstance.registerHelper('json', (v: unknown) => JSON.stringify(v, null, 2));
    hbInstance.registerHelper('eq', (a: unknown, b: unknown) => a === b);
    hbInstance.registerHelper('join', (list: unknown, sep: unknown) => (Array.isArray(list) ? list.join(typeof sep === 'string' ? sep : ', ') : ''));
  }
  return hbInstance;
}

export class TemplateError extends TaskError {}

/**
 * Secrets render as their value inside the file. The output is sensitive when a secret's value
 * is in it: vars that merely carry Secrets the template does not use (an inventory's vars) leave
 * a landing page diffable and its mode alone.
 */
function reveal(v: unknown, seen: { values: string[] }): unknown {
  if (v instanceof Secret) {
    seen.values.push(v.reveal());
    return v.reveal();
  }
  if (Array.isArray(v)) return v.map((x) => reveal(x, seen));
  if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, reveal(x, seen)]));
  }
  return v;
}

/** Renders a template text strictly. `name` is used in errors. */
export function renderTemplate(text: string, vars: object, name: string): { output: string; sensitive: boolean } {
  const seen = { values: [] as string[] };
  const data = reveal(vars, seen);
  let fn: HandlebarsTemplateDelegate;
  try {
    fn = hb().compile(text, { strict: true, noEscape: true });
    const output = fn(data);
    return { output, sensitive: seen.values.some((v) => v !== '' && output.includes(v)) };
  } catch (e) {
    const m = (e as Error).message;
    const missing = /"([^"]+)" not defined in .* - (\d+):(\d+)/.exec(m);
    if (missing) throw new TemplateError(`template ${name} line ${missing[2]}: variable "${missing[1]}" is not defined`);
    throw new TemplateError(`template ${name}: ${m.split('\n')[0]}`);
  }
}

export interface TemplateOptions {
  /** A .hbs file (relative paths: the role's folder, then its templates/ folder). */
  src: string;
  dest: string;
  vars: object;
  mode?: string | number;
  owner?: string;
  group?: string;
  validate?: string;
}

export function template(o: TemplateOptions): Action {
  const invalid = invalidArgs('template', o);
  if (invalid) return invalid;
  return {
    module: 'template',
    summary: `template ${o.src} -> ${o.dest}`,
    async run(ctx): Promise<ActionResult> {
      const base = ctx.roleDir ?? process.cwd();
      const candidates = isAbsolute(o.src) ? [o.src] : [join(base, 'templates', o.src), join(base, o.src)];
      let text: string | undefined;
      let path = candidates[0]!;
      for (const c of candidates) {
        try {
          text = readFileSync(c, 'utf8');
          path = c;
          break;
        } catch {
          /* try the next */
        }
      }
      if (text === undefined) throw new TemplateError(`template ${o.src}: not found (looked in ${candidates.join(', ')})`);
      const { output, sensitive } = renderTemplate(text, o.vars, path);
      const rel = relative(process.cwd(), path);
      return putFile(ctx, o, Buffer.from(output), sensitive, `template ${rel.startsWith('..') || isAbsolute(rel) ? path : rel}`);
    },
  };
}
