// A role of your own: a typed module exporting tasks; templates/ sits next to it.
import { file, role, task, template } from 'phoenix';
import type { MyLabVars } from '../../vars.ts';

export default role<MyLabVars>({
  name: 'motd',
  url: import.meta.url, // templates/ resolve next to this file
  tasks: [
    task({ name: 'motd directory', do: ({ vars }) => file({ path: vars.motd.dir, state: 'directory', mode: '0755' }) }),
    task({
      name: 'motd',
      do: ({ host, vars }) => template({ src: 'motd.hbs', dest: `${vars.motd.dir}/motd`, mode: '0644', vars: { ...vars, hostName: host.name } }),
    }),
  ],
});
