// Registers the lab's five guests (started by lab/up.sh) with proxmox-standin: each gets the
// config its lab inventory declaration describes, as if phoenix had created it, so the first
// site.ts run on the lab finds them as declared (0 changes) and the quick start stays fast.
// A guest already registered is left as it is (its config may have been changed through the API).
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { labInventory } from '../../inventory.ts';
import { lxcCreateBody, managedKeys, createdFrom } from '../../../roles/proxmox/config.ts';
import type { ProxmoxVars } from '../../../roles/proxmox/vars.ts';

const CONFIGS = join(process.env.PVE_STANDIN_STATE ?? '/var/lib/phoenix-lab/proxmox', 'configs');
mkdirSync(CONFIGS, { recursive: true });
const inv = labInventory();
const done: string[] = [];
for (const [name, h] of Object.entries(inv.hosts)) {
  const v = h.vars as ProxmoxVars & { guestId?: number };
  const g = v.guest;
  if (!g || typeof v.guestId !== 'number') continue;
  const file = join(CONFIGS, `${v.guestId}.json`);
  if (existsSync(file)) continue;
  const str = (o: Record<string, string | number>) => Object.fromEntries(Object.entries(o).map(([k, x]) => [k, String(x)]));
  let config: Record<string, string>;
  if (g.kind === 'lxc') {
    const { vmid: _v, ostemplate: _o, 'ssh-public-keys': _k, start: _s, rootfs: _r, ...rest } = str(lxcCreateBody(v.guestId, g));
    config = { arch: 'amd64', ostype: 'debian', ...rest, rootfs: `${g.rootfs.storage}:vm-${v.guestId}-disk-0,size=${g.rootfs.sizeGb}G` };
    config.net0 = `${config.net0},hwaddr=BC:24:11:00:${String(v.guestId % 100).padStart(2, '0')}:01,type=veth`;
  } else {
    config = { ...str(managedKeys(g)), description: createdFrom(g), ostype: 'l26', boot: 'order=scsi0', [g.disk.key]: `local-lvm:vm-${v.guestId}-disk-0,size=${g.disk.sizeGb}G`, net0: `virtio=BC:24:11:00:${String(v.guestId % 100).padStart(2, '0')}:02,bridge=vmbr0` };
  }
  const rec = { vmid: v.guestId, kind: g.kind === 'lxc' ? 'lxc' : 'qemu', container: name, image: g.kind === 'lxc' ? 'lab/base' : 'lab/vm', config };
  writeFileSync(`${file}.tmp`, JSON.stringify(rec, null, 1));
  renameSync(`${file}.tmp`, file);
  done.push(`${name} (${g.kind} ${v.guestId})`);
}
process.stdout.write(done.length ? `proxmox-standin: registered ${done.join(', ')}\n` : 'proxmox-standin: lab guests already registered\n');
