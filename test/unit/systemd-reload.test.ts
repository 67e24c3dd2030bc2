// systemd's daemonReload: reload only when systemd's loaded view of the unit's files is stale
// (its NeedDaemonReload, or a unit file or drop-in on disk it has not loaded: systemd 252 does
// not flag a drop-in directory created since its last reload). The probe outputs below are
// built by show() and files() in the shape unitProbe() prints (checked against the lab's lxc102,
// systemd 252, by hand); the probe's shell itself runs in the e2e suites (traefik, step-ca).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseUnitProbe, systemd, unitFileNames } from '../../runner/modules/systemd.ts';
import type { ActionContext, ActionResult } from '../../runner/types.ts';

const show = (o: { need?: string; frag?: string; dropins?: string[] } = {}) =>
  [
    'LoadState=loaded',
    'ActiveState=active',
    'UnitFileState=enabled',
    `NeedDaemonReload=${o.need ?? 'no'}`,
    `FragmentPath=${o.frag ?? '/etc/systemd/system/traefik.service'}`,
    ...(o.frag === '' ? [] : [`lunit:${o.frag ?? '/etc/systemd/system/traefik.service'}`]),
    `DropInPaths=${(o.dropins ?? []).join(' ')}`,
    ...(o.dropins ?? []).map((d) => `ldropin:${d}`),
  ].join('\n');
const files = (o: { units?: string[]; dropins?: string[] } = {}) =>
  ['--phoenix-unit-files--', ...(o.units ?? ['/etc/systemd/system/traefik.service']).map((u) => `unit:${u}`), ...(o.dropins ?? []).map((d) => `dropin:${d}`)].join('\n');

test('unit names: the .service default, dash prefixes, templates, the type-wide drop-ins', () => {
  assert.equal(unitFileNames('traefik'), { unit: 'traefik.service', fragments: ['traefik.service'], dropinDirs: ['service.d', 'traefik.service.d'] });
  assert.equal(unitFileNames('step-ca').dropinDirs, ['service.d', 'step-.service.d', 'step-ca.service.d']);
  assert.equal(unitFileNames('certbot.timer').unit, 'certbot.timer');
  assert.equal(unitFileNames('getty@tty1.service'), { unit: 'getty@tty1.service', fragments: ['getty@tty1.service', 'getty@.service'], dropinDirs: ['service.d', 'getty@.service.d', 'getty@tty1.service.d'] });
});

test('current: systemd loaded the unit file and the drop-ins that are on disk', () => {
  const d = ['/etc/systemd/system/docker.service.d/phoenix-hosts.conf'];
  assert.is(parseUnitProbe(`${show({ dropins: d })}\n${files({ dropins: d })}`).reload, undefined);
  assert.equal(parseUnitProbe(`${show()}\n${files()}`), { state: { load: 'loaded', active: 'active', enabled: 'enabled' } });
});

test('stale: NeedDaemonReload, a new drop-in directory, a removed drop-in, an overriding unit file', () => {
  assert.match(parseUnitProbe(`${show({ need: 'yes' })}\n${files()}`).reload!, /NeedDaemonReload=yes/);
  // The case systemd 252 misses: a drop-in directory made since the last reload (NeedDaemonReload=no).
  assert.match(parseUnitProbe(`${show()}\n${files({ dropins: ['/etc/systemd/system/traefik.service.d/zz.conf'] })}`).reload!, /drop-ins on disk \(\/etc\/systemd\/system\/traefik\.service\.d\/zz\.conf\) are not the loaded \(none\)/);
  assert.ok(parseUnitProbe(`${show({ dropins: ['/etc/systemd/system/traefik.service.d/zz.conf'] })}\n${files()}`).reload);
  assert.match(
    parseUnitProbe(`${show({ frag: '/lib/systemd/system/traefik.service' })}\n${files({ units: ['/etc/systemd/system/traefik.service', '/lib/systemd/system/traefik.service'] })}`).reload!,
    /unit file \/etc\/systemd\/system\/traefik\.service is not the loaded \/lib\/systemd\/system\/traefik\.service/,
  );
});

function ctxWith(out: string, check = false) {
  const ran: string[] = [];
  const ctx = {
    host: { name: 'h' },
    check,
    diff: false,
    pendingChanges: false,
    probe: async (cmd: string) => ({ code: 0, stdout: cmd.startsWith('s=$(systemctl show') ? out : '', stderr: '' }),
    run: async (cmd: string) => {
      ran.push(cmd);
      return { code: 0, stdout: '', stderr: '' };
    },
    change: async (plan: ActionResult, apply: () => Promise<ActionResult | void>) => (check ? plan : ((await apply()) ?? plan)),
  } as unknown as ActionContext;
  return { ctx, ran };
}

test('daemonReload on a started, enabled service: no reload while current; a reload (not a change) when stale', async () => {
  const action = systemd({ name: 'traefik', state: 'started', enabled: true, daemonReload: true });
  const current = ctxWith(`${show()}\n${files()}`);
  assert.equal(await action.run(current.ctx), { changed: false });
  assert.equal(current.ran, []);
  const stale = ctxWith(`${show()}\n${files({ dropins: ['/etc/systemd/system/traefik.service.d/zz.conf'] })}`);
  assert.equal((await action.run(stale.ctx)).changed, false);
  assert.equal(stale.ran, ['systemctl daemon-reload']);
  // Check mode: nothing run.
  const checked = ctxWith(`${show({ need: 'yes' })}\n${files()}`, true);
  assert.equal((await action.run(checked.ctx)).changed, false);
  assert.equal(checked.ran, []);
});

test.run();
