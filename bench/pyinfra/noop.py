# Workloads 1 and 4 for pyinfra: twenty no-op `true` commands on every host, as root through
# sudo like the other tools. Same work as ../noop.ts and ../ansible/noop.yml.
from pyinfra.operations import server

for i in range(1, 21):
    server.shell(name=f"true {i}", commands=["true"], _sudo=True)
