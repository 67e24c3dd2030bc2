#!/bin/bash
# Runs inside the lab/base rootfs (chroot) while mmdebstrap builds it.
# Makes a Debian minbase tree boot as a systemd "machine" inside a container.
set -euo pipefail

# --- units that make no sense in a container ---------------------------------
mask=(
  systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket
  systemd-udev-trigger.service systemd-udev-settle.service systemd-hwdb-update.service
  getty.target getty@.service serial-getty@.service console-getty.service
  systemd-remount-fs.service systemd-firstboot.service
  systemd-modules-load.service kmod-static-nodes.service
  systemd-sysctl.service                  # would write the host's kernel knobs
  sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount
  sys-fs-fuse-connections.mount dev-hugepages.mount
  proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount systemd-binfmt.service
  systemd-journald-audit.socket systemd-pstore.service
  apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service
  e2scrub_all.timer e2scrub_reap.service fstrim.timer
)
for u in "${mask[@]}"; do ln -sf /dev/null "/etc/systemd/system/$u"; done

# journald: keep logs in memory, small
mkdir -p /etc/systemd/journald.conf.d
printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=16M\n' >/etc/systemd/journald.conf.d/phoenix-lab.conf

# --- per-guest identity: created at first boot, never baked into the image ----
: >/etc/machine-id                       # empty => systemd generates one at first boot
rm -f /var/lib/dbus/machine-id
ln -sf /etc/machine-id /var/lib/dbus/machine-id
rm -f /etc/ssh/ssh_host_*

cat >/etc/systemd/system/phoenix-lab-hostkeys.service <<'UNIT'
[Unit]
Description=phoenix lab: generate this guest's sshd host keys at first boot
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
# ed25519 (what lab:up pins in .lab/known_hosts) and ecdsa; no RSA: 3072-bit RSA
# generation took seconds per guest on 2 cores
ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key
ExecStart=/usr/bin/ssh-keygen -q -t ecdsa -N "" -f /etc/ssh/ssh_host_ecdsa_key
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
UNIT
mkdir -p /etc/systemd/system/multi-user.target.wants /etc/systemd/system/ssh.service.wants
ln -sf ../phoenix-lab-hostkeys.service /etc/systemd/system/multi-user.target.wants/
ln -sf ../phoenix-lab-hostkeys.service /etc/systemd/system/ssh.service.wants/

# --- /etc/hosts, /etc/hostname, /etc/resolv.conf: docker bind-mounts them, so a
# write-to-temp-and-rename (what config tools do) fails with EBUSY. At each boot,
# replace the bind mounts with plain files holding the same content.
cat >/usr/local/sbin/phoenix-lab-unbind-etc <<'SH'
#!/bin/sh
for f in /etc/hosts /etc/hostname /etc/resolv.conf; do
  if grep -q " $f " /proc/self/mountinfo; then
    c="$(cat "$f")"
    umount "$f" && printf '%s\n' "$c" >"$f"
  fi
done
exit 0
SH
chmod 0755 /usr/local/sbin/phoenix-lab-unbind-etc
cat >/etc/systemd/system/phoenix-lab-unbind-etc.service <<'UNIT'
[Unit]
Description=phoenix lab: make docker's bind-mounted /etc/hosts, hostname, resolv.conf plain files
DefaultDependencies=no
Before=sysinit.target systemd-tmpfiles-setup.service
ConditionVirtualization=container

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/phoenix-lab-unbind-etc
RemainAfterExit=yes

[Install]
WantedBy=sysinit.target
UNIT
mkdir -p /etc/systemd/system/sysinit.target.wants
ln -sf ../phoenix-lab-unbind-etc.service /etc/systemd/system/sysinit.target.wants/

# --- sshd: keys only, root by key only, forwarding allowed --------------------
mkdir -p /etc/ssh/sshd_config.d
cat >/etc/ssh/sshd_config.d/10-phoenix-lab.conf <<'CONF'
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AllowTcpForwarding yes
UseDNS no
CONF
systemctl enable ssh.service >/dev/null 2>&1 || ln -sf /lib/systemd/system/ssh.service /etc/systemd/system/multi-user.target.wants/ssh.service

# --- the runner's user --------------------------------------------------------
id phoenix >/dev/null 2>&1 || useradd --create-home --uid 1000 --user-group --shell /bin/bash phoenix
passwd -l phoenix >/dev/null
passwd -l root >/dev/null
printf 'phoenix ALL=(ALL:ALL) NOPASSWD: ALL\n' >/etc/sudoers.d/phoenix
chmod 0440 /etc/sudoers.d/phoenix
install -d -m 0700 /root/.ssh
install -d -m 0700 -o phoenix -g phoenix /home/phoenix/.ssh

# --- misc ----------------------------------------------------------------------
printf 'LANG=C.UTF-8\n' >/etc/default/locale
echo "phoenix-lab guest (container with systemd as PID 1; see lab/README.md)" >/etc/motd
# (apt lists and caches: mmdebstrap's own cleanup step removes them; doing it here
#  breaks its final `apt-get clean`)
rm -f /var/log/*.log 2>/dev/null || true
