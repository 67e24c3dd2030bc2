// step-ca on LXC 103, first in site.ts: the binary from its pinned source, a root and an
// intermediate made with openssl on the CA host (keys 0600, owned by the `step` user, never
// leaving the host), ca.json rendered from typed vars and tried on a scratch instance before it
// goes live (rolled back if the live restart fails), a hardened systemd unit, readiness over
// verified TLS, and the root certificate (never a key) exported to the control machine.
import {
  apt,
  command,
  copy,
  fetchFile,
  file,
  handler,
  installBinary,
  role,
  shell,
  shQuote,
  systemd,
  task,
  waitFor,
  replace,
  restartAndWait,
  Secret,
  TaskError,
  type Readiness,
  type Action,
  type ActionResult,
} from '../../runner/index.ts';
import { readFileSync } from 'node:fs';
import type { BaseVars } from '../base-vars.ts';
import { serviceState } from '../../runner/facts.ts';
import { caJson, checkStepCaVars, PATHS, STEP_DIR } from './config.ts';
import { stepCaVarsSchema, type StepCaVars } from './vars.ts';

/** What step-ca reads: its own vars and the base. */
export type StepCaRoleVars = StepCaVars & BaseVars;
type V = StepCaRoleVars;

const BIN = '/usr/local/bin/step-ca';
const UNIT = '/etc/systemd/system/step-ca.service';
const PW = PATHS.password;
const FINISH_ROTATION = '/usr/local/lib/phoenix/step-ca-finish-rotation';
const KEY_PASSWORD_SH = readFileSync(new URL('./files/key-password.sh', import.meta.url), 'utf8');

/** Restarts step-ca, then waits (bounded) until /health answers over TLS verified with the root. */
export const restartStepCa = handler<V>('restart step-ca', ({ vars }) => {
  const restart = systemd({ name: 'step-ca', state: 'restarted', daemonReload: true });
  return {
    ...restart,
    async run(ctx) {
      // Only a change: in check mode it is reported, not made, and there is nothing to wait for.
      const st = await serviceState(ctx, 'step-ca');
      if (st.load === 'not-found') return restart.run(ctx);
      return ctx.change({ changed: true, msg: 'restarted' }, async () => {
        const up = await restartAndWait(ctx, { unit: 'step-ca', daemonReload: true, timeout: 30 }, health(vars.stepCa.port));
        if (!up.ok) throw new TaskError(`step-ca on ${ctx.host.name} does not answer /health after its restart: ${up.error}`, { stderr: up.log });
        return { changed: true, msg: 'restarted, healthy' };
      });
    },
  };
});

/** The names in the CA's own TLS certificate. */
export const caNames = (v: V, address: string) => [`ca.${v.domain}`, address, ...v.stepCa.dnsNames];

const healthUrl = (v: V) => `https://localhost:${v.stepCa.port}/health`;

/** step-ca has come back: /health answers over TLS verified with the root, on the CA host. */
const health = (port: number): Readiness => ({ url: `https://localhost:${port}/health`, ca: PATHS.root });

/** The port in a ca.json's "address" (":9000"). */
function portIn(json: string): number | undefined {
  try {
    const m = /:(\d+)$/.exec(String((JSON.parse(json) as { address?: unknown }).address ?? ''));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * ca.json: rendered, tried on a scratch instance (127.0.0.1:0, its own database) before it
 * replaces the live file, and rolled back by the runner's `replace` (docs/rollback.md) if the
 * live step-ca then does not come back on it.
 */
function caConfig(v: V, address: string): Action<V> {
  // A scratch instance proves the binary, the keys, the password and the config together.
  // No `date +%s` in here: validate replaces every %s with the new file's path.
  const trial = [
    `d=$(mktemp -d /tmp/step-ca-trial.XXXXXX) || exit 1`,
    `pid=; trap 'if [ -n "$pid" ]; then kill $pid 2>/dev/null; wait $pid 2>/dev/null; fi; rm -rf "$d"' EXIT`,
    `sed -e 's#"address": "[^"]*"#"address": "127.0.0.1:0"#' -e "s#\\"dataSource\\": \\"[^\\"]*\\"#\\"dataSource\\": \\"$d/db\\"#" %s > "$d/ca.json" && chown -R step:step "$d" || { echo "step-ca refused the new ca.json: cannot prepare the trial in $d" >&2; exit 1; }`,
    `setpriv --reuid=step --regid=step --init-groups env STEPPATH=${STEP_DIR} ${BIN} --password-file ${PW} "$d/ca.json" > "$d/log" 2>&1 & pid=$!`,
    `ok=; n=0; while [ $n -lt 300 ]; do n=$((n + 1)); if grep -q 'Serving HTTPS' "$d/log"; then ok=1; break; fi; kill -0 $pid 2>/dev/null || break; sleep 0.1; done`,
    `if [ -z "$ok" ]; then echo "step-ca refused the new ca.json: $(grep -v -e '^[[:space:]]*$' -e '^badger ' "$d/log" | tail -n 2 | tr '\\n' ' ')" >&2; exit 1; fi`,
  ].join('\n');
  const errs = checkStepCaVars(v.stepCa);
  const file = replace({
    name: 'step-ca',
    files: [{ dest: PATHS.config, content: caJson({ vars: v.stepCa, dnsNames: caNames(v, address) }), mode: '0600', owner: 'step', group: 'step', validate: trial }],
    // The port the live file says: the new one, then after a rollback the previous one.
    service: { unit: 'step-ca', ready: (json) => health(portIn(json) ?? v.stepCa.port), timeout: 30 },
  });
  return {
    ...file,
    async run(ctx): Promise<ActionResult> {
      if (errs.length) throw new TaskError(`invalid step-ca vars for ${ctx.host.name}:\n  ${errs.join('\n  ')}`);
      return file.run(ctx);
    },
  };
}

/**
 * stepCa.keyPassword on the CA host (issue 16, item 2). The wanted password goes to the host on
 * stdin only. When it already opens the keys, the password file is made to say so. When it does
 * not but the password file does, the keys are re-encrypted with it on the host (opened with the
 * file's password), the new set is proved by a scratch step-ca, moved in by renames that a
 * marker lets finish after a crash (templates/step-ca-finish-rotation.sh), and only then is the
 * live step-ca restarted; if it does not come back, the old set is restored. When neither opens
 * the keys, nothing on the host is changed.
 */
function keyPassword(v: V, address: string): Action<V> {
  return {
    module: 'step_ca_key_password',
    summary: `key password of the root and intermediate keys (${PW})`,
    async run(ctx): Promise<ActionResult> {
      const pw = v.stepCa.keyPassword!;
      if (/[\r\n]/.test(pw.reveal())) throw new TaskError('stepCa.keyPassword: must be one line (openssl and step-ca read the first line of the password file)');
      // Read-only: it only tries which password opens the keys (MODE=probe writes nothing).
      const probe = await ctx.probe(`MODE=probe; ${KEY_PASSWORD_SH}`, { stdin: new Secret(`${pw.reveal()}\n`, 'stepCa.keyPassword') });
      const state = /state: (\w+)/.exec(probe.stdout)?.[1];
      if (probe.code !== 0 || !state) throw new TaskError(`${ctx.host.name}: cannot tell whether stepCa.keyPassword opens the step-ca keys`, { stderr: probe.stderr, code: probe.code });
      if (state === 'ok') return { changed: false };
      if (state === 'neither')
        throw new TaskError(
          `${ctx.host.name}: neither stepCa.keyPassword nor the password in ${PW} opens the step-ca keys (${PATHS.rootKey}, ${PATHS.intermediateKey}); ` +
            'nothing was changed: put the password the keys were encrypted with in stepCa.keyPassword or back into the password file',
        );
      const writeFile = copy({ dest: PW, content: pw, mode: '0600', owner: 'step', group: 'step' });
      // No keys yet (they are made next, with this file), or the keys already open with it.
      if (state === 'nokeys' || state === 'file') return writeFile.run(ctx);
      // check-mode exception: what follows (rotate, prove, restart, roll back) is one change; say so
      // without a secret (the engine would refuse its commands anyway).
      if (ctx.check) return { changed: true, msg: 'would rotate the key password' };
      const scratch = caJson({ vars: v.stepCa, dnsNames: caNames(v, address), address: '127.0.0.1:0', db: '@SCRATCH_DB@', key: '@SCRATCH_KEY@' });
      const r = await ctx.run(`MODE=rotate; ${KEY_PASSWORD_SH}`, { stdin: new Secret(`${pw.reveal()}\n${scratch}`, 'stepCa.keyPassword'), timeout: 120 });
      if (r.code !== 0 || !r.stdout.includes('rotated')) {
        const why = r.stderr.trim().split('\n').pop() ?? '';
        throw new TaskError(`${ctx.host.name}: the key password was not rotated: ${why}; the keys and password file on the host are unchanged`, { stderr: r.stderr, code: r.code });
      }
      const live = (await ctx.run('systemctl is-active step-ca')).stdout.trim() === 'active';
      if (live) {
        // The restart and its verdict are the runner's (docs/rollback.md); the files are this
        // scheme's own: three, re-encrypted on the host, moved by a crash-safe finisher.
        const up = await restartAndWait(ctx, { unit: 'step-ca', timeout: 30 }, health(v.stepCa.port));
        if (!up.ok) {
          const S = `${STEP_DIR}/secrets`;
          await ctx.run(`for f in root_ca_key intermediate_ca_key password; do mv -f ${S}/.rotate-prev/$f ${S}/$f; done; rmdir ${S}/.rotate-prev`);
          const again = await restartAndWait(ctx, { unit: 'step-ca', timeout: 30 }, health(v.stepCa.port));
          throw new TaskError(
            `step-ca on ${ctx.host.name} did not come back after the key password rotation: ${up.error}; rolled back: the previous keys and password are restored${again.ok ? ' and step-ca answers again' : `, and step-ca does NOT come back on them either: ${again.error}`}`,
            { stderr: up.log },
          );
        }
      }
      await ctx.run(`rm -rf ${STEP_DIR}/secrets/.rotate-prev`);
      return { changed: true, msg: `rotated the key password${live ? '; step-ca restarted and healthy' : ''}` };
    },
  };
}

const openssl = `set -e; umask 077; cd ${STEP_DIR}; t=$(mktemp -d ${STEP_DIR}/.phx-XXXXXX); trap 'rm -rf "$t"' EXIT
cat > "$t/ext.cnf" <<'CNF'
[req]
distinguished_name = dn
[dn]
[v3_root]
basicConstraints = critical,CA:TRUE,pathlen:1
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_intermediate]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,digitalSignature,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
CNF
newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes-256-cbc -pass file:${PW} -out "$1"; }`;

export default role<V>({
  name: 'step-ca',
  vars: stepCaVarsSchema,
  tags: ['pki'],
  url: import.meta.url,
  tasks: [
    task({ name: 'packages', do: apt({ name: ['openssl', 'curl', 'ca-certificates'] }) }),
    task({
      name: 'step user',
      do: command(['useradd', '--system', '--user-group', '--home-dir', '/etc/step-ca', '--no-create-home', '--shell', '/usr/sbin/nologin', 'step'], { unless: 'id -u step' }),
    }),
    task({ name: 'step-ca directory', do: file({ path: STEP_DIR, state: 'directory', mode: '0750', owner: 'step', group: 'step' }) }),
    task({ name: 'certs directory', do: file({ path: `${STEP_DIR}/certs`, state: 'directory', mode: '0755', owner: 'step', group: 'step' }) }),
    task({ name: 'secrets directory', do: file({ path: `${STEP_DIR}/secrets`, state: 'directory', mode: '0700', owner: 'step', group: 'step' }) }),
    task({ name: 'config directory', do: file({ path: `${STEP_DIR}/config`, state: 'directory', mode: '0700', owner: 'step', group: 'step' }) }),
    task({ name: 'database directory', do: file({ path: PATHS.db, state: 'directory', mode: '0700', owner: 'step', group: 'step' }) }),
    task({
      name: 'step-ca binary',
      notify: [restartStepCa],
      do: ({ vars }) => installBinary({ dest: BIN, source: vars.stepCa.source }),
    }),
    task({ name: 'phoenix helper directory', do: file({ path: '/usr/local/lib/phoenix', state: 'directory', mode: '0755', owner: 'root', group: 'root' }) }),
    task({ name: 'key rotation finisher', do: copy({ src: 'templates/step-ca-finish-rotation.sh', dest: FINISH_ROTATION, mode: '0755', owner: 'root', group: 'root' }) }),
    task({ name: 'interrupted key password rotation finished', do: shell(FINISH_ROTATION, { onlyIf: `test -d ${STEP_DIR}/secrets/.rotate-ready` }) }),
    task({
      name: 'key password',
      do: ({ vars, host }) =>
        vars.stepCa.keyPassword
          ? keyPassword(vars, host.address)
          : // No password given: one is made on the CA host and never leaves it.
            shell(`set -e; umask 077; t=$(mktemp ${PW}.XXXXXX); openssl rand -base64 32 > "$t"; chown step:step "$t"; mv "$t" ${PW}`, { creates: PW }),
    }),
    task({
      name: 'root CA',
      do: ({ vars }) =>
        shell(
          `${openssl}
newkey "$t/root.key"
openssl req -new -x509 -key "$t/root.key" -passin file:${PW} -subj ${shQuote(`/O=${vars.stepCa.name}/CN=${vars.stepCa.name} Root CA`)} -days ${vars.stepCa.rootDays} -sha256 -config "$t/ext.cnf" -extensions v3_root -out "$t/root.crt"
chown step:step "$t/root.key" "$t/root.crt"; chmod 0600 "$t/root.key"; chmod 0644 "$t/root.crt"
mv "$t/root.key" ${PATHS.rootKey}; mv "$t/root.crt" ${PATHS.root}`,
          { creates: PATHS.root },
        ),
    }),
    task({
      name: 'intermediate CA',
      do: ({ vars }) =>
        shell(
          `${openssl}
newkey "$t/int.key"
openssl req -new -key "$t/int.key" -passin file:${PW} -subj ${shQuote(`/O=${vars.stepCa.name}/CN=${vars.stepCa.name} Intermediate CA`)} -out "$t/int.csr"
openssl x509 -req -in "$t/int.csr" -CA ${PATHS.root} -CAkey ${PATHS.rootKey} -passin file:${PW} -set_serial "0x$(openssl rand -hex 16)" -days ${vars.stepCa.intermediateDays} -sha256 -extfile "$t/ext.cnf" -extensions v3_intermediate -out "$t/int.crt"
chown step:step "$t/int.key" "$t/int.crt"; chmod 0600 "$t/int.key"; chmod 0644 "$t/int.crt"
mv "$t/int.key" ${PATHS.intermediateKey}; mv "$t/int.crt" ${PATHS.intermediate}`,
          { creates: PATHS.intermediate },
        ),
    }),
    task({
      name: 'keys open with the password',
      do: shell(`openssl pkey -in ${PATHS.intermediateKey} -passin file:${PW} -noout && openssl pkey -in ${PATHS.rootKey} -passin file:${PW} -noout`, { readOnly: true }),
    }),
    task({ name: 'systemd unit', notify: [restartStepCa], do: copy({ src: 'templates/step-ca.service', dest: UNIT, mode: '0644', owner: 'root', group: 'root' }) }),
    task({ name: 'ca.json', do: ({ vars, host }) => caConfig(vars, host.address) }),
    task({ name: 'step-ca running', do: systemd({ name: 'step-ca', state: 'started', enabled: true, daemonReload: true }) }),
    task({ name: 'step-ca healthy', do: ({ vars }) => waitFor({ url: healthUrl(vars), ca: PATHS.root, timeout: 60 }) }),
    task({ name: 'export root certificate', do: ({ vars }) => fetchFile({ src: PATHS.root, dest: vars.stepCa.exportRoot }) }),
  ],
});
