# Workloads 2 and 3 for pyinfra: ten copies and ten templates, content from vars, as root
# through sudo. Same work as ../files.ts and ../ansible/files.yml. The template is Ansible's
# with its whitespace control written out (Ansible renders with trim_blocks; pyinfra has no such
# option); the bench checks that the files are byte-identical. PHX_BENCH_RUN is the run id.
import io
import os

from pyinfra import host
from pyinfra.operations import files

run_id = os.environ.get("PHX_BENCH_RUN", "steady")
bench_dir = os.environ.get("PHX_BENCH_DIR", "/tmp/phx-bench/pyinfra")
items = ["alpha", "bravo", "charlie", "delta", "echo"]
here = os.path.dirname(os.path.abspath(__file__))

for i in range(1, 11):
    files.put(
        name=f"copy {i}",
        src=io.StringIO(f"# bench copy {i}\nhost = {host.name}\nrun = {run_id}\n"),
        dest=f"{bench_dir}/copy-{i}.txt",
        mode="644",
        _sudo=True,
    )

for i in range(1, 11):
    files.template(
        name=f"template {i}",
        src=os.path.join(here, "templates", "bench.conf.j2"),
        dest=f"{bench_dir}/template-{i}.conf",
        mode="644",
        index=i,
        inventory_hostname=host.name,
        run_id=run_id,
        bench_items=items,
        _sudo=True,
    )
