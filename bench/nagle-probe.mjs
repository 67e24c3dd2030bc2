// One ssh2 connection to a loopback sshd, 20 commands through one shell, one at a time: the
// time per command with ssh2's TCP socket as it is (Nagle on) and with setNoDelay(true).
//   node bench/nagle-probe.mjs [default|nodelay] INVENTORY.json   (a loopback inventory from bench/.work)
// Measured: Node 20 (ssh2's native crypto addon loaded) 0.4 ms either way; Node 24 (addon not
// loaded) 45 ms per command by default, 0.6 ms with noDelay: bench/ANALYSIS.md, proposal D0.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
const require = createRequire(new URL('../package.json', import.meta.url));
const ssh2 = require('ssh2');
const inv = JSON.parse(readFileSync(process.argv[3], 'utf8'));
const h = Object.values(inv.hosts)[0];
const noDelay = process.argv[2] === 'nodelay';
const c = new ssh2.Client();
c.on('ready', () => {
  if (noDelay) c._sock.setNoDelay(true);
  c.exec('/bin/sh', (err, ch) => {
    let out = ''; let n = 0; const t0 = performance.now();
    const next = () => ch.write(`true; echo DONE${n}\n`);
    ch.on('data', (d) => { out += d; if (out.includes(`DONE${n}\n`)) { out = ''; if (++n === 20) { console.log(process.version, noDelay ? 'noDelay' : 'default', ((performance.now() - t0) / 20).toFixed(1), 'ms per command'); c.end(); } else next(); } });
    next();
  });
});
c.connect({ host: h.address, port: h.port, username: h.user, privateKey: readFileSync(h.key), hostVerifier: () => true });
