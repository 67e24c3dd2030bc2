#!/usr/bin/env bash
# phoenix lab: remove everything the lab made.
#   npm run lab:down              guests, network, volumes, the lab dockerd, its mounts,
#                                 iptables rules, .lab/ — keeps the image store and the
#                                 build cache (next lab:up does not rebuild)
#   npm run lab:down -- --purge   also the images and /var/cache/phoenix-lab (step-ca)
# Idempotent: fine to run when nothing is up.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PURGE=0
for a in "$@"; do
  case "$a" in
    --purge) PURGE=1 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) die "unknown argument: $a (only --purge)" ;;
  esac
done
need_root
lab_lock
START=$SECONDS

# 1. containers, network, volumes (through the lab's own daemon only)
if dockerd_up; then
  mapfile -t ctrs < <(ldocker ps -aq)
  if ((${#ctrs[@]})); then
    ldocker rm -f -v "${ctrs[@]}" >/dev/null
    log "removed ${#ctrs[@]} container(s)"
  fi
  ldocker network rm "$NET_NAME" >/dev/null 2>&1 || true
  mapfile -t vols < <(ldocker volume ls -q)
  if ((${#vols[@]})); then ldocker volume rm -f "${vols[@]}" >/dev/null; log "removed ${#vols[@]} volume(s)"; fi
  # keep only the lab's own images (dangling layers from rebuilds go)
  ldocker image prune -f >/dev/null 2>&1 || true
fi

# 2. stop the lab dockerd (by its pidfile only) and what it started
if pid="$(dockerd_pid)"; then
  # the daemon-managed containerd, to make sure it goes too
  cpid="$(cat "$LAB_RUN/exec/containerd/containerd.pid" 2>/dev/null || true)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then warn "dockerd $pid did not stop in 20 s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
  if [[ -n "$cpid" && -d /proc/$cpid ]] && grep -q containerd "/proc/$cpid/comm" 2>/dev/null; then
    kill -TERM "$cpid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.2; done
  fi
  log "stopped the lab dockerd (pid $pid)"
fi
# shims of the lab's containerd namespace (only if the daemon died with guests running)
for d in /proc/[0-9]*; do
  [[ "$(cat "$d/comm" 2>/dev/null)" == containerd-shim* ]] || continue
  tr '\0' ' ' <"$d/cmdline" 2>/dev/null | grep -q -- '-namespace phoenix-lab ' || continue
  kill -KILL "${d#/proc/}" 2>/dev/null && log "killed leftover lab shim ${d#/proc/}" || true
done

# 3. mounts under the lab's directories (deepest first)
mapfile -t mnts < <(awk '{print $5}' /proc/self/mountinfo | grep -E "^($LAB_RUN|$LAB_VAR)(/|$)" | sort -r || true)
for m in "${mnts[@]}"; do umount -l "$m" 2>/dev/null || true; done
((${#mnts[@]} == 0)) || log "unmounted ${#mnts[@]} lab mount(s)"

# 4. network plumbing the lab added
if ip link show "$NET_BRIDGE" >/dev/null 2>&1; then ip link del "$NET_BRIDGE" 2>/dev/null || true; fi
if command -v iptables >/dev/null; then
  for table in nat filter; do
    while read -r rule; do
      [[ -n "$rule" ]] || continue
      eval "iptables -t $table ${rule/-A /-D }" 2>/dev/null || true
    done < <(iptables -t "$table" -S 2>/dev/null | grep -F -- "--comment $LAB_LABEL" || true)
  done
fi
if [[ -f "$LAB_RUN/ip_forward.orig" ]]; then
  cat "$LAB_RUN/ip_forward.orig" >/proc/sys/net/ipv4/ip_forward 2>/dev/null || true
fi

# --- proxmox: stop proxmox-standin (by its pidfile only); its guests are gone, so are their configs ---
if [[ -s "$LAB_RUN/proxmox-standin.pid" ]]; then
  kill -TERM "$(cat "$LAB_RUN/proxmox-standin.pid")" 2>/dev/null && log "stopped proxmox-standin" || true
fi
rm -rf "$LAB_VAR/proxmox/configs"
# --- end proxmox ---

# 5. files
rm -rf "$LAB_RUN" "$STATE_DIR"
if ((PURGE)); then
  rm -rf "$LAB_VAR" "$LAB_CACHE"
  log "purged $LAB_VAR and $LAB_CACHE (images, step-ca binary, build caches)"
else
  # keep the image store (data-root) and /var/cache/phoenix-lab
  rm -rf "${LAB_VAR:?}/bin" "${LAB_VAR:?}/cli" "$DAEMON_JSON" "$DOCKERD_LOG" "$LAB_VAR"/build-*.log "$LAB_VAR/stepca-build.log"
  [[ -d "$DATA_ROOT" ]] && log "kept image store $DATA_ROOT and cache $LAB_CACHE (--purge removes them)"
fi
log "lab down in $((SECONDS - START))s"
