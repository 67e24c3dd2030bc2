import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { renderTemplate, Secret, TemplateError } from '../../runner/index.ts';
import { readFileSync } from 'node:fs';

test('renders nested vars and helpers', () => {
  const { output, sensitive } = renderTemplate('{{a.b}} {{join list "-"}}{{#if (eq n 2)}} two{{/if}}', { a: { b: 'x' }, list: [1, 2], n: 2 }, 't.hbs');
  assert.is(output, 'x 1-2 two');
  assert.is(sensitive, false);
});

test('a missing variable is an error naming the template, line and variable', () => {
  try {
    renderTemplate('line one\nport {{server.port}}\n', { server: {} }, 'roles/x/templates/site.conf.hbs');
    assert.unreachable();
  } catch (e) {
    assert.instance(e, TemplateError);
    assert.is((e as Error).message, 'template roles/x/templates/site.conf.hbs line 2: variable "port" is not defined');
  }
});

test('no HTML escaping in config files', () => {
  assert.is(renderTemplate('{{v}}', { v: 'a && b <c>' }, 't').output, 'a && b <c>');
});

test('a Secret renders its value and marks the output sensitive', () => {
  const r = renderTemplate('password={{pw}}', { pw: new Secret('s3cret-value') }, 't');
  assert.is(r.output, 'password=s3cret-value');
  assert.ok(r.sensitive);
});

test('vars that carry a Secret the template does not use leave the output not sensitive', () => {
  const vars = { title: 'Phoenix', db: { password: new Secret('unused-s3cret-value') } };
  const r = renderTemplate('<title>{{title}}</title>\n', vars, 'page');
  assert.is(r.output, '<title>Phoenix</title>\n');
  assert.not.ok(r.sensitive);
  assert.ok(renderTemplate('pw={{db.password}}\n', vars, 'conf').sensitive);
});

test('the nginx role templates render from the default inventory vars', async () => {
  const { phoenix } = await import('../../inventory.ts');
  const vars = { ...phoenix.vars, hostName: 'lxc101', guestId: 101, webroot: '/var/www/phoenix' };
  const page = renderTemplate(readFileSync('roles/nginx/templates/index.html.hbs', 'utf8'), vars, 'index');
  assert.match(page.output, /<title>Phoenix Hypervisor<\/title>/);
  assert.match(page.output, /Served by lxc101 \(guest 101\) for internal\.thinkheads\.ai/);
  const http = renderTemplate(readFileSync('roles/nginx/templates/http.conf.hbs', 'utf8'), { ...vars, acmeRoot: '/var/www/acme' }, 'http');
  assert.match(http.output, /listen 80 default_server;/);
  assert.match(http.output, /location \^~ \/\.well-known\/acme-challenge\/ \{\s+root \/var\/www\/acme;/);
  assert.match(http.output, /return 301 https:\/\/\$host\$request_uri;/);
  const tls = renderTemplate(
    readFileSync('roles/nginx/templates/tls.conf.hbs', 'utf8'),
    { ...vars, certDir: '/etc/letsencrypt/live/gateway', traefikName: 'traefik.internal.thinkheads.ai' },
    'tls',
  );
  assert.match(tls.output, /listen 443 ssl default_server;/);
  assert.match(tls.output, /ssl_protocols TLSv1\.2 TLSv1\.3;/);
  assert.match(tls.output, /server_name portainer\.internal\.thinkheads\.ai qdrant\.internal\.thinkheads\.ai;/);
  assert.match(tls.output, /proxy_pass https:\/\/10\.0\.0\.12:443;/);
  assert.match(tls.output, /proxy_ssl_verify on;/);
  assert.match(tls.output, /proxy_ssl_name traefik\.internal\.thinkheads\.ai;/);
  assert.match(tls.output, /proxy_set_header Host \$host;/);
});

test.run();
