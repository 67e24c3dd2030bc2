// Where connecting to the lab guests spends its time, phase by phase, with ssh2 configured as
// runner/connection/ssh.ts configures it (key file, the known_hosts key type only, sudo -n -H
// /bin/sh with a ready marker), then one `true` through the shell. Read-only: runs `true`.
//   node --import=tsx bench/connect-probe.ts [ROUNDS=5]
// Prints per phase the median over rounds, for the five guests one at a time and all at once:
// when the parallel figures stay near the serial ones of ONE host, nothing on our side waits in
// line; when they grow towards five times, something does. Also OpenSSH's `ssh host true` and
// `ssh host sudo -n true` for comparison.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ssh2 from 'ssh2';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const st = JSON.parse(readFileSync(resolve(ROOT, '.lab/lab.json'), 'utf8')) as { user: string; key: string; knownHosts: string; hosts: Record<string, { address: string; port?: number }> };
const abs = (p: string) => resolve(ROOT, p);
const rounds = Number(process.argv[2] ?? 5);
const now = () => performance.now();

interface Phases {
  readKey: number;
  tcp: number;
  handshake: number;
  auth: number;
  sudoShell: number;
  firstTrue: number;
  total: number;
}

function probe(address: string, port: number): Promise<Phases> {
  return new Promise((res, rej) => {
    const t0 = now();
    const key = readFileSync(abs(st.key));
    const tKey = now();
    let tTcp = 0;
    let tHs = 0;
    const c = new ssh2.Client();
    c.on('handshake', () => (tHs = now()));
    c.on('error', rej);
    c.on('ready', () => {
      const tReady = now();
      const ready = `PHX_READY_${Math.random().toString(36).slice(2)}`;
      c.exec(`sudo -n -H /bin/sh -c 'echo ${ready}; exec /bin/sh'`, (err, ch) => {
        if (err) return rej(err);
        let out = '';
        let tShell = 0;
        ch.on('data', (d: Buffer) => {
          out += d.toString();
          if (!tShell && out.includes(ready)) {
            tShell = now();
            out = '';
            ch.write('true; echo PHX_DONE $?\n');
          } else if (tShell && out.includes('PHX_DONE')) {
            const tTrue = now();
            ch.end();
            c.end();
            res({ readKey: tKey - t0, tcp: tTcp - tKey, handshake: tHs - tTcp, auth: tReady - tHs, sudoShell: tShell - tReady, firstTrue: tTrue - tShell, total: tTrue - t0 });
          }
        });
      });
    });
    c.connect({
      host: address,
      port,
      username: st.user,
      privateKey: key,
      algorithms: { serverHostKey: ['ssh-ed25519'] },
      // Time to the TCP connection: ssh2 reports it through the socket it creates.
      hostVerifier: () => true, // the probe measures; the runner verifies against known_hosts
      debug: (m: string) => {
        if (!tTcp && /Socket connected/.test(m)) tTcp = now();
      },
    });
  });
}

const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const hosts = Object.values(st.hosts);
const fmt = (ps: Phases[]) =>
  (Object.keys(ps[0]!) as (keyof Phases)[]).map((k) => `${k} ${med(ps.map((p) => p[k])).toFixed(1)}`).join(' | ');

const serial: Phases[] = [];
const parallel: Phases[] = [];
const wallParallel: number[] = [];
const cpuParallel: number[] = [];
for (let r = 0; r < rounds; r++) {
  for (const h of hosts) serial.push(await probe(h.address, h.port ?? 22));
  const t = now();
  const c0 = process.cpuUsage();
  parallel.push(...(await Promise.all(hosts.map((h) => probe(h.address, h.port ?? 22)))));
  const c1 = process.cpuUsage(c0);
  cpuParallel.push((c1.user + c1.system) / 1000);
  wallParallel.push(now() - t);
}
console.log(`one host at a time (ms, median of ${serial.length}):   ${fmt(serial)}`);
console.log(`${hosts.length} hosts at once (ms, median of ${parallel.length}):   ${fmt(parallel)}`);
console.log(`${hosts.length} hosts at once, wall to the last host ready (ms, median of ${rounds}): ${med(wallParallel).toFixed(1)}; this process's CPU meanwhile: ${med(cpuParallel).toFixed(1)} ms`);
const h = hosts[0]!;
const ssh = (cmd: string) => {
  const xs: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t = now();
    spawnSync('ssh', ['-i', abs(st.key), '-p', String(h.port ?? 22), '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${abs(st.knownHosts)}`, '-o', 'StrictHostKeyChecking=yes', `${st.user}@${h.address}`, cmd]);
    xs.push(now() - t);
  }
  return med(xs).toFixed(1);
};
console.log(`OpenSSH to ${h.address} (ms, median of ${rounds}): ssh true ${ssh('true')} | ssh sudo -n true ${ssh('sudo -n true')}`);
