// The proxmox role: on the `proxmox` host, the guests the inventory declares (each guest host's
// `guest` var, vmid = its guestId) are created and kept in shape through the Proxmox VE API,
// from the control machine (node:https), with the API token as a Secret and TLS verified against the
// inventory's CA file.
//
// Per guest: GET config (+ digest) → the per-key plan (roles/proxmox/config.ts) → PUT only the
// keys that differ, with the digest (a concurrent edit is refused) → resize disks that grow →
// create what is missing (POST lxc, or clone + config for a VM), waiting on every UPID with a
// bound → learn a new guest's SSH host key through the hypervisor (pct exec / qm guest exec over
// the proxmox host's verified connection) into known_hosts → start stopped guests in startup
// order. Refusals (re-creation, shrinking, a vmid of the other kind) fail the task before any
// write. Check mode sends only GET requests and shows the per-key plan with --diff.
import { existsSync, readFileSync, renameSync, writeFileSync, mkdirSync } from 'node:fs';
import { createHmac, randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { role, task } from '../../runner/dsl.ts';
import type { Host } from '../../runner/inventory.ts';
import { shQuote } from '../../runner/connection/shell.ts';
import { redact } from '../../runner/secret.ts';
import { TaskError, type Action, type ActionContext, type ActionResult, type FileDiff } from '../../runner/types.ts';
import { resolveSecret } from '../../stacks/types.ts';
import { PveClient, PveError, req } from './api.ts';
import { kindOf, lxcCreateBody, managedKeys, planGuest, planLines, vmCloneBody, type GuestPlan, type Kind } from './config.ts';
import { apiProblems, guestProblems, GuestDeclError, type GuestDecl, type ProxmoxApi, type ProxmoxVars } from './vars.ts';

interface Declared {
  host: Host<ProxmoxVars & { guestId?: number }>;
  vmid: number;
  guest: GuestDecl;
}

/** The guests the inventory declares, validated (every problem at once, naming host and field). */
export function declaredGuests(hosts: Iterable<Host<any>>): Declared[] {
  const out: Declared[] = [];
  const problems: string[] = [];
  const seen = new Map<number, string>();
  for (const h of hosts) {
    const v = h.vars as ProxmoxVars & { guestId?: number };
    if (!v.guest) continue;
    problems.push(...guestProblems(h.name, v.guestId, v.guest));
    if (typeof v.guestId === 'number') {
      const other = seen.get(v.guestId);
      if (other) problems.push(`host "${h.name}": field "guestId": ${v.guestId} is also the guestId of host "${other}"`);
      seen.set(v.guestId, h.name);
    }
    out.push({ host: h, vmid: v.guestId as number, guest: v.guest });
  }
  if (problems.length) throw new GuestDeclError(problems);
  return out.sort((a, b) => a.guest.startup.order - b.guest.startup.order || a.vmid - b.vmid);
}

/** known_hosts: the lines for `pattern` replaced by one new (hashed) line; temp file + rename. */
export function replaceKnownHost(file: string, pattern: string, keyLine: string): boolean {
  const [type, b64] = keyLine.trim().split(/\s+/);
  if (!type || !b64 || !/^(ssh-ed25519|ecdsa-sha2-nistp\d+|ssh-rsa) [A-Za-z0-9+/=]+$/.test(`${type} ${b64}`)) throw new TaskError(`not an SSH public key: ${keyLine.slice(0, 80)}`);
  const old = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const matches = (field: string) => {
    if (field.startsWith('|1|')) {
      const [, , salt, hash] = field.split('|');
      return !!salt && !!hash && createHmac('sha1', Buffer.from(salt, 'base64')).update(pattern).digest('base64') === hash;
    }
    return field.split(',').includes(pattern);
  };
  const kept: string[] = [];
  let had = false;
  for (const line of old.split('\n')) {
    if (!line.trim()) continue;
    const [hosts, t, b] = line.trim().split(/\s+/);
    if (!line.trim().startsWith('#') && hosts && matches(hosts)) {
      if (t === type && b === b64) had = true;
      continue;
    }
    kept.push(line);
  }
  if (had && kept.length === old.split('\n').filter((l) => l.trim()).length - 1) return false;
  const salt = randomBytes(20);
  const hash = createHmac('sha1', salt).update(pattern).digest('base64');
  kept.push(`|1|${salt.toString('base64')}|${hash} ${type} ${b64}`);
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.phoenix-${process.pid}.tmp`;
  writeFileSync(tmp, `${kept.join('\n')}\n`, { mode: 0o600 });
  renameSync(tmp, file);
  return true;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const HOST_KEY = '/etc/ssh/ssh_host_ed25519_key.pub';

/** Reads a guest's SSH host key through the hypervisor (the proxmox host's verified connection). */
async function hostKeyViaHypervisor(ctx: ActionContext, api: ProxmoxApi, kind: Kind, vmid: number, timeoutS = 180): Promise<string> {
  const deadline = Date.now() + timeoutS * 1000;
  let last = '';
  for (;;) {
    const cmd =
      kind === 'lxc'
        ? `${shQuote(api.pct ?? 'pct')} exec ${vmid} -- cat ${HOST_KEY}`
        : `${shQuote(api.qm ?? 'qm')} guest exec ${vmid} -- cat ${HOST_KEY}`;
    const r = await ctx.run(cmd, { timeout: 60 });
    if (r.code === 0) {
      let out = r.stdout;
      if (kind === 'qemu') {
        // qm guest exec prints {"exitcode":0,"exited":1,"out-data":"…"}
        try {
          const j = JSON.parse(r.stdout) as { exitcode?: number; 'out-data'?: string };
          out = j.exitcode === 0 ? (j['out-data'] ?? '') : '';
        } catch {
          out = '';
        }
      }
      const line = out.split('\n').find((l) => l.startsWith('ssh-ed25519 '));
      if (line) return line.trim();
      last = `no ed25519 key in ${HOST_KEY} yet`;
    } else last = (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ');
    if (Date.now() > deadline) throw new TaskError(`proxmox: the SSH host key of ${kind === 'lxc' ? 'lxc' : 'vm'} ${vmid} could not be read through the hypervisor within ${timeoutS} s: ${last}`);
    await sleep(2000);
  }
}

/**
 * Waits until the guest's SSH port accepts connections, probed from the proxmox host (which
 * reaches every guest; the control machine may only reach them through it), bounded.
 */
async function waitSsh(ctx: ActionContext, h: Host<any>, timeoutS = 180): Promise<void> {
  const cmd = `for i in $(seq 1 ${timeoutS}); do timeout 2 bash -c ${shQuote(`</dev/tcp/${h.address}/${h.port}`)} 2>/dev/null && exit 0; sleep 1; done; exit 1`;
  const r = await ctx.run(`bash -c ${shQuote(cmd)}`, { timeout: timeoutS + 30 });
  if (r.code !== 0) throw new TaskError(`proxmox: ${h.name} was started but its SSH port ${h.address}:${h.port} did not answer within ${timeoutS} s`);
}

/** The action: everything the role does, on the proxmox host. */
export function proxmoxGuests(): Action {
  return {
    module: 'proxmox_guests',
    // It holds its own writes back in check mode (only GETs are sent: the e2e test reads the stand-in's request log).
    checkMode: 'self',
    summary: 'guests declared in the inventory, through the Proxmox VE API',
    async run(ctx): Promise<ActionResult> {
      if (!ctx.inventory) throw new TaskError('proxmox: this runner gives tasks no inventory (ActionContext.inventory)');
      const api = (ctx.host.vars as ProxmoxVars).proxmox as ProxmoxApi;
      const ap = apiProblems(ctx.host.name, api);
      if (ap.length) throw new GuestDeclError(ap);
      const guests = declaredGuests(ctx.inventory.hosts.values());
      const tokenSecret = resolveSecret(api.tokenSecret, `host "${ctx.host.name}": field "proxmox.tokenSecret"`);
      const client = new PveClient({ url: api.url, tokenId: api.tokenId, tokenSecret, caFile: api.caFile, taskTimeout: api.taskTimeout });
      const node = api.node;
      const lines: string[] = [];
      const diffs: FileDiff[] = [];
      try {
        // ---- read (GET only) and plan
        const resources = await client.send<{ vmid: number; type: string; status?: string; node?: string }[]>(req.resources());
        const kinds = new Map<number, { kind: Kind; status?: string }>();
        for (const r of resources) if (r.type === 'lxc' || r.type === 'qemu') kinds.set(Number(r.vmid), { kind: r.type, status: r.status });
        const plans: { d: Declared; plan: GuestPlan; digest?: string; waiting: string[] }[] = [];
        // Every guest's config and pending changes at once (GETs only; the client's agent caps the connections).
        const reads = await Promise.all(
          guests.map(async (d) => {
            const k = kinds.get(d.vmid);
            if (!k || k.kind !== kindOf(d.guest)) return undefined;
            const [cur, pend] = await Promise.all([
              client.send<Record<string, unknown>>(req.config(node, k.kind, d.vmid)),
              client.send<PendingEntry[]>(req.pending(node, k.kind, d.vmid)),
            ]);
            return { cur, pend };
          }),
        );
        for (const [i, d] of guests.entries()) {
          const k = kinds.get(d.vmid);
          let cur: Record<string, unknown> | undefined;
          let waiting: string[] = [];
          const read = reads[i];
          if (read) {
            // Compared with what the guest will have after its next start: a change already
            // pending is not made again (and not reported as a change on every run).
            cur = withPending(read.cur, read.pend);
            waiting = waitingKeys(read.pend);
          }
          const plan = planGuest(d.host.name, d.vmid, d.guest, k?.kind, cur);
          if (plan.create && !(d.guest.kind === 'lxc' ? d.guest.sshPublicKeys : d.guest.sshkeys).length)
            plan.refusals.push(`${d.host.name}: field "guest.${d.guest.kind === 'lxc' ? 'sshPublicKeys' : 'sshkeys'}": is empty; a guest created without phoenix's login key could not be configured`);
          plans.push({ d, plan, digest: cur?.digest as string | undefined, waiting });
        }
        const refusals = plans.flatMap((p) => p.plan.refusals);
        if (refusals.length) throw new TaskError(`proxmox: ${refusals.length} change${refusals.length > 1 ? 's' : ''} refused; no guest was changed:\n  - ${refusals.join('\n  - ')}`);
        for (const { d, plan } of plans) {
          const l = planLines(plan);
          if (l.length) {
            lines.push(...l.map((x) => `${d.host.name}: ${x}`));
            const path = `proxmox ${plan.kind === 'lxc' ? 'lxc' : 'vm'} ${d.vmid} (${d.host.name})`;
            diffs.push({ path, before: '', after: '', text: redact(`${path}\n${l.map((x) => `  ${x}`).join('\n')}\n`) });
          }
        }
        // Guests not running (existing ones from /cluster/resources; new ones after creation).
        const toStart = plans.filter(({ d, plan }) => plan.create || kinds.get(d.vmid)?.status !== 'running');
        const pendingNote = (d: Declared, keys: string[]) => `${d.host.name}: ${keys.join(', ')} pending until the guest restarts (set guest.allowRestart to let phoenix restart it)`;
        // check-mode exception: report the starts and restarts the plan implies (only GETs were sent).
        if (ctx.check) {
          const notes: string[] = [];
          // Keys already pending; whether a key written now would be pending is Proxmox's call, known after the write.
          for (const { d, waiting } of plans) {
            if (!waiting.length) continue;
            if (d.guest.allowRestart && kinds.get(d.vmid)?.status === 'running') lines.push(`${d.host.name}: restart to apply ${waiting.join(', ')}`);
            else notes.push(pendingNote(d, waiting));
          }
          for (const { d } of toStart) {
            const l = `start ${kindOf(d.guest) === 'lxc' ? 'lxc' : 'vm'} ${d.vmid} (startup order ${d.guest.startup.order})`;
            lines.push(`${d.host.name}: ${l}`);
          }
          const changed = lines.length > 0;
          return { changed, msg: [changed ? `would change: ${lines.join('; ')}` : `${guests.length} guests as declared`, ...notes].join('; '), diff: ctx.diff && diffs.length ? diffs : undefined };
        }

        // ---- write: create, configure, resize
        const notes: string[] = [];
        for (const p of plans) {
          const { d, plan } = p;
          const kind = plan.kind;
          if (plan.create) {
            if (d.guest.kind === 'lxc') {
              const upid = await client.send<string>(req.createLxc(node, lxcCreateBody(d.vmid, d.guest)));
              await client.waitTask(node, upid, `create lxc ${d.vmid} (${d.host.name})`);
            } else {
              const upid = await client.send<string>(req.clone(node, d.guest.cloneFrom, vmCloneBody(d.vmid, d.guest)));
              await client.waitTask(node, upid, `clone template ${d.guest.cloneFrom} to vm ${d.vmid} (${d.host.name})`);
              // The clone has the template's settings: plan against it and write the differences.
              const cur = await client.send<Record<string, unknown>>(req.config(node, 'qemu', d.vmid));
              const after = planGuest(d.host.name, d.vmid, d.guest, 'qemu', cur);
              if (after.refusals.length) throw new TaskError(`proxmox: the clone ${d.vmid} of template ${d.guest.cloneFrom} cannot take the declared shape:\n  - ${after.refusals.join('\n  - ')}`);
              let digest = String(cur.digest ?? '');
              if (Object.keys(after.put).length) {
                await client.send(req.putConfig(node, 'qemu', d.vmid, { ...managedKeysOnly(after.put, d.guest) }, digest));
                digest = String((await client.send<Record<string, unknown>>(req.config(node, 'qemu', d.vmid))).digest ?? '');
              }
              for (const rz of after.resize) {
                const upid = await client.send<string>(req.resize(node, 'qemu', d.vmid, rz.disk, rz.toGb, digest));
                if (typeof upid === 'string' && upid.startsWith('UPID:')) await client.waitTask(node, upid, `resize ${rz.disk} of vm ${d.vmid}`);
              }
            }
            continue;
          }
          let waiting = p.waiting;
          if (Object.keys(plan.put).length) {
            try {
              await client.send(req.putConfig(node, kind, d.vmid, plan.put, p.digest ?? ''));
            } catch (e) {
              if (e instanceof PveError && /changed by other user|digest/i.test(e.message))
                throw new TaskError(
                  `proxmox: ${d.host.name} (${kind === 'lxc' ? 'lxc' : 'vm'} ${d.vmid}): its config changed after phoenix read it (digest ${p.digest} no longer matches); nothing was written to it. Run again to plan against the new config.\n  ${e.message}`,
                );
              throw e;
            }
            waiting = waitingKeys(await client.send<PendingEntry[]>(req.pending(node, kind, d.vmid)));
          }
          if (waiting.length) {
            if (d.guest.allowRestart && kinds.get(d.vmid)?.status === 'running') {
              const upid = await client.send<string>(req.reboot(node, kind, d.vmid));
              await client.waitTask(node, upid, `restart ${d.host.name} for ${waiting.join(', ')}`);
              await waitSsh(ctx, d.host);
              lines.push(`${d.host.name}: restarted to apply ${waiting.join(', ')}`);
            } else notes.push(pendingNote(d, waiting));
          }
          for (const rz of plan.resize) {
            const digest = String((await client.send<Record<string, unknown>>(req.config(node, kind, d.vmid))).digest ?? '');
            const upid = await client.send<string>(req.resize(node, kind, d.vmid, rz.disk, rz.toGb, digest));
            if (typeof upid === 'string' && upid.startsWith('UPID:')) await client.waitTask(node, upid, `resize ${rz.disk} of ${d.host.name}`);
          }
        }

        // ---- start in startup order (the up= delay after each guest phoenix started)
        for (const { d, plan } of toStart.sort((a, b) => a.d.guest.startup.order - b.d.guest.startup.order)) {
          const kind = plan.kind;
          const st = await client.send<{ status: string }>(req.status(node, kind, d.vmid));
          if (st.status === 'running') continue;
          const upid = await client.send<string>(req.start(node, kind, d.vmid));
          await client.waitTask(node, upid, `start ${d.host.name}`);
          await waitSsh(ctx, d.host);
          lines.push(`${d.host.name}: started (startup order ${d.guest.startup.order})`);
          if (d.guest.startup.up) await sleep(d.guest.startup.up * 1000);
        }

        // ---- first contact: host keys through the hypervisor, for new guests and guests not in known_hosts
        const { lookupKnownHosts, hostPattern } = await import('../../runner/connection/knownhosts.ts');
        for (const { d, plan } of plans) {
          const known = lookupKnownHosts(ctx.inventory.knownHosts, d.host.address, d.host.port);
          if (!plan.create && known.length) continue;
          const key = await hostKeyViaHypervisor(ctx, api, plan.kind, d.vmid);
          if (replaceKnownHost(ctx.inventory.knownHosts, hostPattern(d.host.address, d.host.port), key))
            lines.push(`${d.host.name}: host key ${key.split(' ')[0]} learned through the hypervisor into ${ctx.inventory.knownHosts}`);
        }
        const changed = lines.length > 0;
        return {
          changed,
          msg: [changed ? lines.join('; ') : `${guests.length} guests as declared`, ...notes].join('; '),
          diff: ctx.diff && diffs.length ? diffs : undefined,
        };
      } finally {
        client.close();
      }
    },
  };
}

interface PendingEntry {
  key: string;
  value?: unknown;
  pending?: unknown;
  delete?: number;
}

/** The config as it will be after the guest's next start: pending values over current ones. */
export function withPending(cur: Record<string, unknown>, pend: PendingEntry[]): Record<string, unknown> {
  const out = { ...cur };
  for (const p of pend) {
    if (p.delete) delete out[p.key];
    else if (p.pending !== undefined) out[p.key] = p.pending;
  }
  return out;
}

/** Keys whose change waits for a restart. */
export const waitingKeys = (pend: PendingEntry[]) => pend.filter((x) => x.pending !== undefined || x.delete).map((x) => x.key);

/** Only the managed keys of a plan's PUT (a clone's other template keys stay). */
function managedKeysOnly(put: Record<string, string | number>, g: GuestDecl): Record<string, string | number> {
  const keys = new Set(Object.keys(managedKeys(g)));
  return Object.fromEntries(Object.entries(put).filter(([k]) => keys.has(k)));
}

export const proxmox = role<ProxmoxVars>({
  name: 'proxmox',
  url: import.meta.url,
  tasks: [task({ name: 'guests as declared (Proxmox VE API)', do: proxmoxGuests() as Action<ProxmoxVars> })],
});

export default proxmox;
