// The swarm state of one node, as typed facts: parsed from `docker info --format '{{json .Swarm}}'`
// and the node's swarm certificate (read as PEM and parsed here: its subject's O= is the swarm's cluster ID, on workers too,
// where `docker info` does not show it). Pure functions: unit-tested without a host.
import { X509Certificate } from 'node:crypto';
import { shQuote } from '../../runner/index.ts';

export type LocalNodeState = 'inactive' | 'pending' | 'active' | 'error' | 'locked';

export interface SwarmState {
  state: LocalNodeState;
  nodeId: string;
  nodeAddr: string;
  /** True on a manager. */
  controlAvailable: boolean;
  /** Docker's own error for a failed or half-done join. */
  error: string;
  remoteManagers: { nodeId: string; addr: string }[];
  /** The swarm's ID: .Cluster.ID on managers, else the O= of the node certificate. */
  clusterId?: string;
}

export const NODE_CERT = '/var/lib/docker/swarm/certificates/swarm-node.crt';
const SEP = '--phoenix-swarm-cert--';

/** The Engine API on the host's socket: GET `path`, the JSON body on stdout, a non-zero exit on an HTTP error. */
export const engineGet = (path: string) => `curl -sSf --unix-socket /var/run/docker.sock ${shQuote(`http://localhost${path}`)}`;
/** Printed instead of the state when the host has no docker. */
export const NO_DOCKER = '--phoenix-no-docker--';

/**
 * One round trip: whether docker is there, its view (the Engine API's /info through curl, or the
 * CLI where curl is missing), then the node certificate's subject (if any).
 */
export const SWARM_PROBE = [
  `command -v docker >/dev/null 2>&1 || { echo ${shQuote(NO_DOCKER)}; exit 0; }`,
  `if command -v curl >/dev/null 2>&1; then ${engineGet('/info')}; else docker info --format '{{json .Swarm}}'; fi`,
  `rc=$?`,
  `echo ${shQuote(SEP)}`,
  // The PEM itself, read here: openssl x509 costs ~45 ms per call on the lab's guests (OpenSSL 3's decoders), six calls in site.ts.
  `[ -r ${NODE_CERT} ] && cat ${NODE_CERT} 2>/dev/null`,
  `exit $rc`,
].join('\n');

/** The swarm's nodes, from a manager, in one round trip: a JSON array (Engine API) or JSON lines (CLI). */
export const NODES_PROBE = `if command -v curl >/dev/null 2>&1; then ${engineGet('/nodes')}; else ids=$(docker node ls -q) && [ -n "$ids" ] && docker node inspect --format '{{json .}}' $ids; fi`;

const STATES: LocalNodeState[] = ['inactive', 'pending', 'active', 'error', 'locked'];

/** The subject of the node certificate in the probe's output: its PEM (parsed here), or an `openssl x509 -subject` line. */
function certSubject(text: string): string {
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(text)?.[0];
  if (!pem) return text.trim().replace(/^subject=/, '');
  try {
    return new X509Certificate(pem).subject;
  } catch {
    return '';
  }
}

/** Parses SWARM_PROBE's output; `where` names host and command in errors. */
export function parseSwarmProbe(stdout: string, where: string): SwarmState {
  const [info, cert = ''] = stdout.split(SEP);
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(info.trim()) as Record<string, unknown>;
    // The Engine API's whole /info, or the CLI's Swarm section alone.
    if (j && typeof j.Swarm === 'object' && j.Swarm) j = j.Swarm as Record<string, unknown>;
  } catch {
    throw new Error(`${where}: cannot read docker info's Swarm section: ${JSON.stringify(info.trim().slice(0, 200))}`);
  }
  const state = String(j.LocalNodeState ?? '') as LocalNodeState;
  if (!STATES.includes(state)) throw new Error(`${where}: unknown LocalNodeState ${JSON.stringify(j.LocalNodeState)}`);
  const cluster = j.Cluster as { ID?: string } | undefined;
  const o = /(?:^|[,\n])O=([^,\s]+)/.exec(certSubject(cert));
  return {
    state,
    nodeId: String(j.NodeID ?? ''),
    nodeAddr: String(j.NodeAddr ?? ''),
    controlAvailable: j.ControlAvailable === true,
    error: String(j.Error ?? ''),
    remoteManagers: ((j.RemoteManagers as { NodeID: string; Addr: string }[] | null) ?? []).map((m) => ({ nodeId: m.NodeID, addr: m.Addr })),
    clusterId: cluster?.ID || o?.[1] || undefined,
  };
}

/** A swarm node as `docker node inspect` shows it (the fields phoenix reads). */
export interface NodeInfo {
  id: string;
  hostname: string;
  role: 'manager' | 'worker';
  /** ready, down, unknown, disconnected */
  state: string;
  availability: string;
  addr: string;
  managerAddr?: string;
  labels: Record<string, string>;
}

/** NODES_PROBE's output: the Engine API's JSON array of nodes, or `docker node inspect` JSON lines. */
export function parseNodes(stdout: string, where: string): NodeInfo[] {
  const text = stdout.trim();
  let raw: any[];
  try {
    raw = text.startsWith('[') ? JSON.parse(text) : text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  } catch {
    throw new Error(`${where}: cannot read the swarm's node list: ${JSON.stringify(text.slice(0, 200))}`);
  }
  return raw.map((n) => ({
    id: n.ID,
    hostname: n.Description?.Hostname ?? '',
    role: n.Spec?.Role,
    state: n.Status?.State ?? 'unknown',
    availability: n.Spec?.Availability ?? '',
    addr: n.Status?.Addr ?? '',
    managerAddr: n.ManagerStatus?.Addr,
    labels: n.Spec?.Labels ?? {},
  }));
}

/**
 * The node whose address (Status.Addr, or a manager's ManagerStatus.Addr) is `address`. A node
 * that left and joined again is listed twice (the old entry "down"): the ready one wins.
 */
export function nodeByAddress(nodes: NodeInfo[], address: string): NodeInfo | undefined {
  const all = nodes.filter((n) => n.addr === address || n.managerAddr?.replace(/:\d+$/, '') === address);
  return all.find((n) => n.state === 'ready') ?? all[0];
}

/** `--label-add k=v` arguments for the labels that are missing or different (merge, as Ansible's docker_node). */
export function labelChanges(have: Record<string, string>, want: Record<string, string>): string[] {
  return Object.entries(want)
    .filter(([k, v]) => have[k] !== v)
    .map(([k, v]) => `${k}=${v}`);
}

/**
 * Entries of nodes that left and joined again: for each hostname that has a `ready` entry, the
 * other entries that are `down` (stale: removable) and those in another state (the manager has
 * not yet noticed the node left: wait). A hostname without a ready entry is never touched.
 */
export function staleEntries(nodes: NodeInfo[]): { stale: NodeInfo[]; leaving: NodeInfo[] } {
  const ready = new Set(nodes.filter((n) => n.state === 'ready').map((n) => n.hostname));
  const others = nodes.filter((n) => n.state !== 'ready' && n.hostname && ready.has(n.hostname) && n.role !== 'manager');
  return { stale: others.filter((n) => n.state === 'down'), leaving: others.filter((n) => n.state !== 'down') };
}
