// TLS to Qdrant (issue 16, item 3), in the lab: Qdrant (the lab's stand-in, configured as Qdrant
// is: QDRANT__SERVICE__ENABLE_TLS, QDRANT__TLS__CERT/KEY) serves HTTPS with a step-ca certificate
// for its node; Traefik's upstream is https, verified; every hop through the gateway is verified.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { curl, DOMAIN, onGuests } from './helpers.ts';

const T = suite('qdrant-tls');
const on = async (guest: string, cmd: string) => (await onGuests(guest, cmd))[guest]!;

T('curl through the gateway to qdrant.<domain> works with every hop verified, and the Traefik -> Qdrant hop is TLS (the stand-in logs it)', async () => {
  const q = curl(`https://qdrant.${DOMAIN}/readyz`, 'lxc101', ['-D', '-']);
  assert.is(q.code, 0, q.stderr);
  assert.is(q.status, 200, q.body);
  assert.match(q.body, /X-Phoenix-Standin: qdrant/i);
  assert.match(await on('lxc102', 'cat /etc/traefik/dynamic/*.yml 2>/dev/null || cat /etc/traefik/*/*.yml'), new RegExp(`url: https://vm1002\\.${DOMAIN.replace(/\./g, '\\.')}:6333`));
  const log = await on('vm1002', "docker logs --tail 50 $(docker ps -q --filter name=qdrant_service_qdrant | head -1) 2>&1 | grep 'GET /readyz' | tail -1");
  assert.match(log, /GET \/readyz tls=TLS1\.[23]/, `the stand-in's last /readyz: ${log}`);
});

T("Qdrant on vm1002 serves only HTTPS, with a step-ca certificate for vm1002.<domain> that Traefik's host verifies", async () => {
  const out = await on(
    'lxc102',
    `curl -sS --max-time 5 -o /dev/null -w 'https=%{http_code}\\n' https://vm1002.${DOMAIN}:6333/readyz 2>&1; ` +
      `curl -sS --max-time 5 -o /dev/null -w 'http=%{http_code}\\n' http://vm1002.${DOMAIN}:6333/readyz 2>&1; ` +
      `echo | openssl s_client -connect vm1002.${DOMAIN}:6333 -servername vm1002.${DOMAIN} 2>/dev/null | openssl x509 -noout -issuer -ext subjectAltName`,
  );
  assert.match(out, /https=200/);
  assert.not.match(out, /http=200/);
  assert.match(out, /Phoenix Internal CA Intermediate CA/);
  assert.match(out, new RegExp(`DNS:vm1002\\.${DOMAIN.replace(/\./g, '\\.')}`));
});

T.run();
