// Drift: the live swarm services of a stack (`docker service inspect`) against its compose
// file. A service changed by hand (image, env, labels, replicas/mode, placement, ports,
// endpoint mode, command, mounts, secrets) is drift, and the stack is deployed again.
// Pure functions; stacks/docker.ts and roles/portainer/sync.ts feed them the inspect output.
import type { ComposeFile, ComposeService } from './compose.ts';

/** The parts of `docker service inspect` (Docker Engine API Service object) compared here. */
export interface LiveService {
  Spec: {
    Name: string;
    Labels?: Record<string, string>;
    Mode?: { Replicated?: { Replicas?: number }; Global?: object };
    TaskTemplate?: {
      ContainerSpec?: {
        Image?: string;
        Env?: string[];
        Command?: string[];
        Args?: string[];
        Labels?: Record<string, string>;
        Mounts?: { Type: string; Source?: string; Target: string; ReadOnly?: boolean }[];
        Secrets?: { SecretName: string; File?: { Name: string } }[];
      };
      Placement?: { Constraints?: string[] };
    };
    EndpointSpec?: { Mode?: string; Ports?: { Protocol?: string; TargetPort: number; PublishedPort?: number; PublishMode?: string }[] };
  };
}

const stripDigest = (img: string) => img.replace(/@sha256:[0-9a-f]{64}$/, '');
const sorted = (a: string[]) => [...a].sort();
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
const withoutStack = (l: Record<string, string> = {}) => Object.fromEntries(Object.entries(l).filter(([k]) => !k.startsWith('com.docker.stack.')).sort(([a], [b]) => a.localeCompare(b)));
/** Compose interpolation as docker applies it: `$$` is a literal `$` (phoenix stacks use no variables). */
const lit = (v: string) => v.replace(/\$\$/g, '$');
const litMap = (m: Record<string, string> = {}) => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, lit(v)]));
const show = (v: unknown) => (v === undefined ? '(none)' : JSON.stringify(v));

/** What `docker stack deploy` makes of one compose service, in the terms of the live spec. */
export function expectedSpec(compose: ComposeFile, stack: string, key: string) {
  const s: ComposeService = compose.services[key];
  const vol = (src: string) => compose.volumes?.[src]?.name ?? `${stack}_${src}`;
  return {
    image: lit(s.image),
    env: sorted(Object.entries(s.environment ?? {}).map(([k, v]) => `${k}=${lit(v)}`)),
    labels: withoutStack(litMap(s.deploy?.labels)),
    containerLabels: withoutStack(litMap(s.labels)),
    mode: s.deploy?.mode === 'global' ? 'global' : `replicated ${s.deploy?.replicas ?? 1}`,
    constraints: sorted(s.deploy?.placement?.constraints ?? []),
    endpointMode: s.deploy?.endpoint_mode ?? 'vip',
    ports: (s.ports ?? []).map((p) => `${p.published ?? ''}:${p.target}/${p.protocol ?? 'tcp'} ${p.mode ?? 'ingress'}`).sort(),
    command: (s.entrypoint ?? []).map(lit),
    args: (s.command ?? []).map(lit),
    mounts: (s.volumes ?? []).map((m) => `${m.type} ${m.type === 'volume' ? vol(m.source) : m.source}:${m.target}${m.read_only ? ':ro' : ''}`).sort(),
    secrets: (s.secrets ?? []).map((r) => `${compose.secrets?.[r.source]?.name ?? `${stack}_${r.source}`}:${r.target ?? r.source}`).sort(),
  };
}

function liveSpec(l: LiveService) {
  const c = l.Spec.TaskTemplate?.ContainerSpec ?? {};
  const m = l.Spec.Mode ?? {};
  return {
    image: stripDigest(c.Image ?? ''),
    env: sorted(c.Env ?? []),
    labels: withoutStack(l.Spec.Labels),
    containerLabels: withoutStack(c.Labels),
    mode: m.Global ? 'global' : `replicated ${m.Replicated?.Replicas ?? 1}`,
    constraints: sorted(l.Spec.TaskTemplate?.Placement?.Constraints ?? []),
    endpointMode: l.Spec.EndpointSpec?.Mode ?? 'vip',
    ports: (l.Spec.EndpointSpec?.Ports ?? []).map((p) => `${p.PublishedPort ?? ''}:${p.TargetPort}/${p.Protocol ?? 'tcp'} ${p.PublishMode ?? 'ingress'}`).sort(),
    command: c.Command ?? [],
    args: c.Args ?? [],
    mounts: (c.Mounts ?? []).map((x) => `${x.Type} ${x.Source ?? ''}:${x.Target}${x.ReadOnly ? ':ro' : ''}`).sort(),
    secrets: (c.Secrets ?? []).map((x) => `${x.SecretName}:${x.File?.Name ?? ''}`).sort(),
  };
}

/** Every difference between the live services and the compose file, one line each ("" = none). */
export function stackDrift(compose: ComposeFile, stack: string, live: LiveService[]): string[] {
  const out: string[] = [];
  const byName = new Map(live.map((l) => [l.Spec.Name, l]));
  for (const key of Object.keys(compose.services)) {
    const name = `${stack}_${key}`;
    const l = byName.get(name);
    if (!l) {
      out.push(`${name}: not running`);
      continue;
    }
    byName.delete(name);
    const want = expectedSpec(compose, stack, key);
    const have = liveSpec(l);
    for (const field of Object.keys(want) as (keyof typeof want)[]) {
      if (!same(want[field], have[field])) out.push(`${name}: ${field} ${show(have[field])} -> ${show(want[field])}`);
    }
  }
  for (const name of byName.keys()) out.push(`${name}: not in the compose file (prune removes it)`);
  return out;
}
