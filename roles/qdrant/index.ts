// Qdrant (docs/ARCHITECTURE.md: qdrant_service on VM 1002): the stack, through the Portainer API
// as `phoenix sync` does (or, with swarm.deployStacksWith: 'docker', with `docker stack deploy`
// from the manager), only when something differs; then the collections declared
// in the inventory, through Qdrant's REST API from the manager (curl; the API key is sent as a
// header read from stdin, `-H @-`, never on an argument list). Tag `qdrant` selects exactly these.
import { role, shQuote, task, Secret, TaskError, type Action, type ActionContext, type ActionResult } from '../../runner/index.ts';
import { dockerStack } from '../../stacks/docker.ts';
import { nodesFor, prepareQdrantStack, qdrantStack, qdrantTlsName } from '../../stacks/qdrant.ts';
import { resolveSecret } from '../../stacks/types.ts';
import { stackAction, stacksViaPortainer, type SyncVars } from '../portainer/api.ts';
import { ImmutableFieldError, planCollection, type LiveCollectionConfig } from './collections.ts';
import { qdrantVarsSchema, type QdrantVars } from './vars.ts';

/** What the qdrant role reads: its own vars and, as it deploys through the Portainer API, that API's vars (../portainer/api.ts). */
export type QdrantRoleVars = QdrantVars & SyncVars;
type V = QdrantRoleVars;

/** Qdrant's HTTP base URL as the manager reaches it (the node its placement picks). */
export function qdrantUrl(v: V): string {
  const node = nodesFor(v.qdrant.constraints, v.swarm.nodeLabels)[0];
  const addr = node ? v.swarm.advertise[node] : undefined;
  if (!addr) throw new TaskError(`qdrant: no node of swarm.nodeLabels matches qdrant.constraints (${v.qdrant.constraints.join(', ')})`);
  // HTTPS verified with the system trust store (the step-ca root), by the certificate's name.
  return v.qdrant.tls.enabled ? `https://${qdrantTlsName(node!, v.domain)}:${v.qdrant.httpPort}` : `http://${addr}:${v.qdrant.httpPort}`;
}

export interface QdrantReply {
  status: number;
  body: any;
}

/** One REST call from the host the task runs on; the key travels on curl's stdin. A GET only reads (it runs in check mode). */
export async function qdrantRequest(run: ActionContext['run'], key: Secret, method: string, url: string, body?: unknown): Promise<QdrantReply> {
  const data = body === undefined ? '' : ` -H 'Content-Type: application/json' --data-raw ${shQuote(JSON.stringify(body))}`;
  const cmd = `curl -sS --max-time 10 -H @- -X ${method}${data} -w '\\n%{http_code}' ${shQuote(url)}`;
  const r = await run(cmd, { stdin: new Secret(`api-key: ${key.reveal()}\n`, 'qdrant api-key header'), readOnly: method === 'GET' });
  if (r.code !== 0) throw new TaskError(`qdrant ${method} ${url}: ${r.stderr.trim() || `curl exited ${r.code}`}`, { command: `curl -X ${method} ${url}`, stderr: r.stderr, code: r.code });
  const lines = r.stdout.replace(/\n$/, '').split('\n');
  const status = Number(lines.pop());
  const text = lines.join('\n');
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON: keep the text */
  }
  return { status, body: parsed };
}

const errText = (r: QdrantReply) => (typeof r.body === 'object' && r.body?.status?.error) || JSON.stringify(r.body)?.slice(0, 300);

/** Every declared collection present with the declared params (created or patched; never dropped). */
function collections(v: V): Action<V> {
  const names = v.qdrant.collections.map((c) => c.name);
  return {
    module: 'qdrant_collection',
    summary: `collections ${names.join(', ') || '(none declared)'}`,
    async run(ctx): Promise<ActionResult> {
      if (!v.qdrant.collections.length) return { changed: false, msg: 'no collections declared' };
      const key = resolveSecret(v.qdrant.apiKey, 'qdrant.apiKey');
      const base = qdrantUrl(v);
      const todo: { c: (typeof v.qdrant.collections)[number]; plan: Exclude<ReturnType<typeof planCollection>, { action: 'none' }>; what: string }[] = [];
      const deadline = Date.now() + 60_000;
      for (const c of v.qdrant.collections) {
        let r: QdrantReply;
        for (;;) {
          try {
            r = await qdrantRequest(ctx.run, key, 'GET', `${base}/collections/${encodeURIComponent(c.name)}`);
            break;
          } catch (e) {
            // check-mode exception: not reachable may only mean the stack (an earlier task) was not deployed.
            if (ctx.check) return { changed: true, msg: `would create ${names.join(', ')} once Qdrant answers (${(e as Error).message})` };
            if (Date.now() > deadline) throw e;
            await ctx.probe('sleep 0.5');
          }
        }
        if (r.status !== 200 && r.status !== 404) throw new TaskError(`qdrant GET /collections/${c.name}: HTTP ${r.status}: ${errText(r)}`);
        const live = r.status === 200 ? (r.body?.result?.config as LiveCollectionConfig) : undefined;
        let plan;
        try {
          plan = planCollection(c, live);
        } catch (e) {
          if (e instanceof ImmutableFieldError) throw new TaskError(e.message);
          throw e;
        }
        if (plan.action === 'none') continue;
        const what = plan.action === 'create' ? plan.summary : `patch ${c.name}: ${plan.changes.join(', ')}`;
        todo.push({ c, plan, what });
      }
      if (!todo.length) return { changed: false };
      return ctx.change({ changed: true, msg: todo.map((t) => `would ${t.what}`).join('; ') }, async () => {
        for (const { c, plan } of todo) {
          const w = await qdrantRequest(ctx.run, key, plan.action === 'create' ? 'PUT' : 'PATCH', `${base}/collections/${encodeURIComponent(c.name)}`, plan.body);
          if (w.status !== 200) throw new TaskError(`qdrant ${plan.action} collection ${c.name}: HTTP ${w.status}: ${errText(w)}`);
        }
        return { changed: true, msg: todo.map((t) => t.what).join('; ') };
      });
    },
  };
}

export default role<V>({
  name: 'qdrant',
  vars: qdrantVarsSchema,
  // The API key's secret name (scrypt, ~70 ms of CPU) in the thread pool from the run's start.
  prepare: prepareQdrantStack,
  tasks: [
    task<V>({
      name: 'qdrant stack',
      do: (env) => (stacksViaPortainer(env) ? stackAction<V>('qdrant', qdrantStack)(env) : dockerStack({ stack: () => qdrantStack(env.vars), stateDir: env.vars.swarm.stackDir })),
    }),
    task<V>({ name: 'qdrant collections', do: ({ vars }) => collections(vars) }),
  ],
});
