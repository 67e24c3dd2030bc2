// trust, on every guest: the step-ca root (exported by roles/step-ca to the control machine)
// in the system trust store, refreshed only when the root's content changed, and the service
// names in a managed block of /etc/hosts that leaves every other line alone.
import { existsSync } from 'node:fs';
import { apt, blockInFile, copy, handler, role, shell, task, type Action } from '../../runner/index.ts';
import type { BaseVars } from '../base-vars.ts';
import type { StepCaVars } from '../step-ca/vars.ts';
import { trustVarsSchema, type TrustVars } from './vars.ts';

/** What trust reads: its own vars, step-ca's (the exported root) and the base. */
export type TrustRoleVars = TrustVars & Pick<StepCaVars, 'stepCa'> & BaseVars;
type V = TrustRoleVars;

const STORE = '/usr/local/share/ca-certificates';

export const updateTrustStore = handler<V>('update trust store', shell('update-ca-certificates --fresh >/dev/null'));

/** The /etc/hosts block: one line per address. */
export function hostsBlock(v: V): string {
  return v.trust.hosts.map((h) => `${h.address}\t${h.names.join(' ')}`).join('\n');
}

const unknownYet = (msg: string): Action<V> => ({ module: 'copy', summary: msg, run: async () => ({ changed: 'unknown', msg }) });

export default role<V>({
  name: 'trust',
  vars: trustVarsSchema,
  url: import.meta.url,
  tasks: [
    task({ name: 'ca-certificates', do: apt({ name: ['ca-certificates', 'curl'] }) }),
    task({
      name: 'step-ca root in the trust store',
      notify: [updateTrustStore],
      do: ({ vars, check }) => {
        if (!vars.trust.rootName.endsWith('.crt')) throw new Error(`trust.rootName "${vars.trust.rootName}" must end in .crt (update-ca-certificates reads only those)`);
        const src = vars.stepCa.exportRoot;
        if (!existsSync(src)) {
          // check-mode exception: on a fresh lab the step-ca play did not really run, so there is no root yet: unknown.
          if (check) return unknownYet(`${src} does not exist yet (step-ca has not run)`);
          throw new Error(`the step-ca root ${src} is missing on this machine: run the step-ca play first (npx phoenix site --tags step-ca)`);
        }
        return copy({ src, dest: `${STORE}/${vars.trust.rootName}`, mode: '0644', owner: 'root', group: 'root' });
      },
    }),
    task({ name: 'service names in /etc/hosts', do: ({ vars }) => blockInFile({ path: '/etc/hosts', block: hostsBlock(vars) }) }),
  ],
});
