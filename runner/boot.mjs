// `node --import=phoenix/boot playbooks/x.ts [flags]`: the fastest way to start a playbook with
// node itself. A playbook of this checkout runs from its cached bundle (runner/launch.mjs); any
// other script goes on through tsx, exactly as with `--import=tsx`. Nothing sets this option for
// other processes: name it on the command line (docs/speed.md compares the entry points).
import { boot } from './launch.mjs';

await boot();
