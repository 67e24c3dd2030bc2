#!/usr/bin/env bash
# phoenix lab: bring up five guests (3 "LXC", 2 "VM") on the lab's own dockerd.
#   npm run lab:up            (= bash lab/up.sh)
# Idempotent: a second run reuses running guests whose image is current.
# See lab/README.md for what is real and what is a stand-in.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_root
lab_lock
START=$SECONDS

# ---------------------------------------------------------------- packages
HOST_PKGS=(docker.io mmdebstrap jq openssh-client busybox-static iptables)

ensure_packages() {
  local p missing=() aptlog
  for p in "${HOST_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  log "installing host packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  aptlog="$(mktemp)"
  local apt=(apt-get -q -o DPkg::Lock::Timeout=300)
  # apt-get update only when needed: no lists yet, or the install fails on stale lists
  if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
    "${apt[@]}" update >>"$aptlog" 2>&1 || { cat "$aptlog" >&2; die "apt-get update failed"; }
  fi
  if ! "${apt[@]}" install -y "${missing[@]}" >>"$aptlog" 2>&1; then
    "${apt[@]}" update >>"$aptlog" 2>&1 || true
    "${apt[@]}" install -y "${missing[@]}" >>"$aptlog" 2>&1 \
      || { cat "$aptlog" >&2; rm -f "$aptlog"; die "apt-get install ${missing[*]} failed"; }
  fi
  rm -f "$aptlog"
}

# ---------------------------------------------------------------- step-ca (background)
STEPCA_LOG="$LAB_VAR/stepca-build.log"
STEPCA_PID=""
start_stepca_build() {
  if bash "$LAB_DIR/stepca/build.sh" --check "$STEPCA_BIN"; then
    return 0
  fi
  log "step-ca binary not cached: building it in the background (log: $STEPCA_LOG)"
  bash "$LAB_DIR/stepca/build.sh" "$STEPCA_BIN" >"$STEPCA_LOG" 2>&1 9>&- &
  STEPCA_PID=$!
}

# ---------------------------------------------------------------- lab dockerd
write_daemon_config() {
  mkdir -p "$LAB_RUN" "$LAB_VAR/bin" "$LAB_VAR/cli" "$DATA_ROOT"
  chmod 0711 "$LAB_RUN"
  if ! cmp -s "$LAB_DIR/files/runc-wrapper" "$WRAPPER"; then
    install -m 0755 "$LAB_DIR/files/runc-wrapper" "$WRAPPER.new" && mv -f "$WRAPPER.new" "$WRAPPER"
  fi
  jq -n --arg sock "unix://$SOCK" --arg root "$DATA_ROOT" --arg exec "$LAB_RUN/exec" \
        --arg pid "$PIDFILE" --arg wrapper "$WRAPPER" '{
    hosts: [$sock], "data-root": $root, "exec-root": $exec, pidfile: $pid,
    bridge: "none", iptables: false, "ip6tables": false, "ip-forward": false, "userland-proxy": false,
    "storage-driver": "overlay2",
    "default-runtime": "phoenix-runc", runtimes: {"phoenix-runc": {path: $wrapper}},
    "containerd-namespace": "phoenix-lab", "containerd-plugins-namespace": "phoenix-lab-plugins",
    "log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "2"}
  }' >"$DAEMON_JSON.new"
  mv -f "$DAEMON_JSON.new" "$DAEMON_JSON"
}

start_dockerd() {
  if dockerd_up; then log "lab dockerd already running ($SOCK)"; return 0; fi
  local pid deadline
  if ! pid="$(dockerd_pid)"; then
    [[ -S "$SOCK" ]] && rm -f "$SOCK"
    rm -f "$PIDFILE" # stale: its process is gone or a zombie (see dockerd_pid)
    log "starting the lab's own dockerd ($SOCK, data-root $DATA_ROOT)"
    setsid nohup dockerd --config-file "$DAEMON_JSON" >>"$DOCKERD_LOG" 2>&1 </dev/null 9>&- &
    pid=$!
  fi
  deadline=$((SECONDS + 60))
  until dockerd_up; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$DOCKERD_LOG" >&2
      die "lab dockerd exited during start-up (log: $DOCKERD_LOG)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 30 "$DOCKERD_LOG" >&2
      die "lab dockerd did not answer on $SOCK within 60 s (pid $pid, log: $DOCKERD_LOG)"
    fi
    sleep 0.2
  done
  log "lab dockerd up (pid $(dockerd_pid || echo "$pid"), $(ldocker version -f '{{.Server.Version}}'))"
}

# ---------------------------------------------------------------- network
ensure_network() {
  if ! ldocker network inspect "$NET_NAME" >/dev/null 2>&1; then
    ldocker network create --driver bridge --subnet "$NET_SUBNET" --gateway "$NET_GATEWAY" \
      -o com.docker.network.bridge.name="$NET_BRIDGE" --label "$LAB_LABEL=network" \
      "$NET_NAME" >/dev/null
    log "network $NET_NAME $NET_SUBNET (bridge $NET_BRIDGE)"
  fi
  # dockerd runs with iptables=false and ip-forward=false so it never touches a system
  # docker's chains; the lab adds only what guests need to reach the Debian mirror
  # (apt in roles). lab:down removes the rules and restores ip_forward.
  if [[ ! -f "$LAB_RUN/ip_forward.orig" ]]; then
    cat /proc/sys/net/ipv4/ip_forward >"$LAB_RUN/ip_forward.orig"
  fi
  echo 1 >/proc/sys/net/ipv4/ip_forward
  local c=(-m comment --comment "$LAB_LABEL")
  iptables -t nat -C POSTROUTING -s "$NET_SUBNET" ! -o "$NET_BRIDGE" "${c[@]}" -j MASQUERADE 2>/dev/null \
    || iptables -t nat -A POSTROUTING -s "$NET_SUBNET" ! -o "$NET_BRIDGE" "${c[@]}" -j MASQUERADE
  iptables -C FORWARD -i "$NET_BRIDGE" "${c[@]}" -j ACCEPT 2>/dev/null \
    || iptables -I FORWARD -i "$NET_BRIDGE" "${c[@]}" -j ACCEPT
  iptables -C FORWARD -o "$NET_BRIDGE" "${c[@]}" -j ACCEPT 2>/dev/null \
    || iptables -I FORWARD -o "$NET_BRIDGE" "${c[@]}" -j ACCEPT
}

# ---------------------------------------------------------------- images
# Debian mirror lines from the host's apt sources (deb822 first, then sources.list).
mirror_lines() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    awk '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && uris != "" && suites != "" && enabled != "no") {
          n = split(uris, U, " "); m = split(suites, S, " ")
          for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) print "deb " U[i] " " S[j] " " comps
        }
        types = uris = suites = comps = enabled = ""
      }
      /^[[:space:]]*#/ { next }
      /^[[:space:]]*$/ { flush(); next }
      { key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^ +/, ""); val = $0 }
      key == "types" { types = val } key == "uris" { uris = val } key == "suites" { suites = val }
      key == "components" { comps = val } key == "enabled" { enabled = tolower(val) }
      END { flush() }' "$f"
  done
  [[ -f /etc/apt/sources.list ]] && grep -E '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list || true
}

BASE_PKGS="openssh-server,sudo,python3,curl,ca-certificates,iproute2,iputils-ping,systemd-sysv,dbus,procps,less,netbase,openssl,libzstd1,gnupg,apt-utils,nano"

image_label() { ldocker image inspect -f '{{index .Config.Labels "phoenix.lab.hash"}}' "$1" 2>/dev/null || true; }

build_base() {
  local mirrors hash
  mapfile -t mirrors < <(mirror_lines | awk '$3 ~ /^bookworm/' | awk '!seen[$0]++')
  ((${#mirrors[@]})) || die "no Debian bookworm mirror found in /etc/apt/sources.list.d/*.sources"
  hash="$( { printf '%s\n' "$BASE_PKGS" "${mirrors[@]}" v1; cat "$LAB_DIR/files/guest-setup.sh"; } | sha256sum | cut -c1-16)"
  BASE_HASH="$hash"
  if [[ "$(image_label lab/base)" == "$hash" ]]; then log "image lab/base: cached"; return 0; fi
  log "building lab/base with mmdebstrap (minbase, mirror: ${mirrors[0]})"
  local blog="$LAB_VAR/build-base.log" t=$SECONDS
  if ! mmdebstrap --variant=minbase --mode=root --format=tar \
      --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
      --aptopt='Acquire::Check-Valid-Until "false"' --aptopt='Acquire::Check-Date "false"' \
      --aptopt='APT::Install-Recommends "false"' \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
      --include="$BASE_PKGS" \
      --customize-hook="copy-in $LAB_DIR/files/guest-setup.sh /tmp" \
      --customize-hook='chroot "$1" bash /tmp/guest-setup.sh' \
      bookworm - "${mirrors[@]}" 2>"$blog" \
    | ldocker import -c 'CMD ["/sbin/init"]' -c "LABEL phoenix.lab.hash=$hash" \
        -c 'LABEL phoenix.lab.image=base' - lab/base >/dev/null; then
    tail -n 40 "$blog" >&2
    die "building lab/base failed (log: $blog)"
  fi
  log "image lab/base built in $((SECONDS - t))s ($(ldocker image inspect -f '{{.Size}}' lab/base | numfmt --to=iec))"
}

build_vm() {
  local hash bc=phoenix-lab-build-vm t=$SECONDS vlog="$LAB_VAR/build-vm.log"
  hash="$( { echo "$BASE_HASH v1"; cat "$LAB_DIR/files/vm-setup.sh" "$LAB_DIR/files/runc-wrapper"; } | sha256sum | cut -c1-16)"
  if [[ "$(image_label lab/vm)" == "$hash" ]]; then log "image lab/vm: cached"; return 0; fi
  log "building lab/vm (lab/base + docker.io)"
  ldocker rm -f "$bc" >/dev/null 2>&1 || true
  ldocker create --name "$bc" --network host --label "$LAB_LABEL=build" lab/base bash /tmp/vm-setup.sh >/dev/null
  ldocker cp "$LAB_DIR/files/vm-setup.sh" "$bc:/tmp/vm-setup.sh"
  ldocker cp "$LAB_DIR/files/runc-wrapper" "$bc:/tmp/runc-wrapper"
  if ! ldocker start -a "$bc" >"$vlog" 2>&1; then
    tail -n 40 "$vlog" >&2; ldocker rm -f "$bc" >/dev/null 2>&1 || true
    die "building lab/vm failed (log: $vlog)"
  fi
  ldocker commit -c 'CMD ["/sbin/init"]' -c "LABEL phoenix.lab.hash=$hash" -c 'LABEL phoenix.lab.image=vm' \
    "$bc" lab/vm >/dev/null
  ldocker rm -f "$bc" >/dev/null
  log "image lab/vm built in $((SECONDS - t))s"
}

build_standins() {
  local hash
  hash="$( { printf '%s\n' "${STANDINS[@]}" v1; sha256sum /bin/busybox; cat "$LAB_DIR/files/standin/"*; } | sha256sum | cut -c1-16)"
  STANDIN_IMAGES=()
  local s name ports todo=()
  for s in "${STANDINS[@]}"; do
    read -r name ports <<<"$s"
    STANDIN_IMAGES+=("phoenix/$name-standin:lab")
    # A Go stand-in (lab/standins/NAME/) replaces the busybox nc one of the same name.
    if compgen -G "$LAB_DIR/standins/$name/*.go" >/dev/null; then
      if bash "$LAB_DIR/standins/build.sh" "$name" 9>&-; then continue; fi
      warn "Go stand-in $name failed to build; using the busybox one"
    fi
    [[ "$(image_label "phoenix/$name-standin:lab")" == "$hash" ]] || todo+=("$s")
  done
  # Go stand-ins with no busybox counterpart (e.g. portainer-agent).
  local d known=" "
  for s in "${STANDINS[@]}"; do known+="${s%% *} "; done
  for d in "$LAB_DIR"/standins/*/; do
    name="$(basename "$d")"
    [[ "$known" == *" $name "* ]] && continue
    compgen -G "$d*.go" >/dev/null || continue
    bash "$LAB_DIR/standins/build.sh" "$name" 9>&- || die "stand-in $name: build failed"
    STANDIN_IMAGES+=("phoenix/$name-standin:lab")
  done
  if ((${#todo[@]} == 0)); then log "stand-in images: cached"; return 0; fi
  local root; root="$(mktemp -d /tmp/phoenix-standin.XXXXXX)"
  mkdir -p "$root"/{bin,etc,tmp,standin,www,data,qdrant/storage,etc/traefik}
  chmod 1777 "$root/tmp"
  install -m 0755 /bin/busybox "$root/bin/busybox"
  chroot "$root" /bin/busybox --install -s /bin
  install -m 0755 "$LAB_DIR/files/standin/serve" "$LAB_DIR/files/standin/handler" "$root/standin/"
  printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  for s in "${todo[@]}"; do
    read -r name ports <<<"$s"
    local expose=() p
    for p in $ports; do expose+=(-c "EXPOSE $p"); done
    tar -C "$root" -c . | ldocker import \
      -c "ENV STANDIN_NAME=$name" -c "ENV STANDIN_PORTS=\"$ports\"" "${expose[@]}" \
      -c 'CMD ["/standin/serve"]' -c "LABEL phoenix.lab.hash=$hash" \
      -c "LABEL phoenix.standin=true" -c "LABEL org.opencontainers.image.title=$name-standin" \
      -c "LABEL org.opencontainers.image.description=\"phoenix lab stand-in for $name (busybox, NOT the real $name)\"" \
      - "phoenix/$name-standin:lab" >/dev/null
  done
  rm -rf "$root"
  log "stand-in images built: ${STANDIN_IMAGES[*]}"
}

# portainer-standin deploys stacks with `docker stack deploy`, as Portainer does with the docker
# binary its image ships: the lab's image gets Debian's docker CLI (same docker.io as the VMs')
# and the two glibc files it needs from this machine, as one more layer. Cached by content.
add_docker_cli_to_portainer_standin() {
  local img=phoenix/portainer-standin:lab files=(/usr/bin/docker /lib/x86_64-linux-gnu/libc.so.6 /lib64/ld-linux-x86-64.so.2)
  ldocker image inspect -f '{{.Config.Entrypoint}}' "$img" 2>/dev/null | grep -q portainer-standin || return 0 # the busybox one
  local want have c
  want="$(sha256sum "${files[@]}" | sha256sum | cut -c1-16)"
  have="$(ldocker image inspect -f '{{index .Config.Labels "phoenix.lab.docker-cli"}}' "$img" 2>/dev/null || true)"
  [[ "$have" == "$want" ]] && return 0
  c="$(ldocker create "$img")"
  tar -ch "${files[@]}" 2>/dev/null | ldocker cp - "$c:/" || { ldocker rm -f "$c" >/dev/null; die "adding the docker CLI to $img failed"; }
  ldocker commit -c "LABEL phoenix.lab.docker-cli=$want" "$c" "$img" >/dev/null
  ldocker rm -f "$c" >/dev/null
  log "$img: docker CLI added ($(/usr/bin/docker --version | cut -d, -f1))"
}

# ---------------------------------------------------------------- guests
ensure_key() {
  mkdir -p "$STATE_DIR"; chmod 0700 "$STATE_DIR"
  if [[ ! -s "$STATE_DIR/id_ed25519" ]]; then
    rm -f "$STATE_DIR/id_ed25519" "$STATE_DIR/id_ed25519.pub"
    ssh-keygen -q -t ed25519 -N '' -C "phoenix-lab@$(hostname)" -f "$STATE_DIR/id_ed25519"
    log "generated $STATE_DIR/id_ed25519"
  fi
  chmod 0600 "$STATE_DIR/id_ed25519"
  [[ -s "$STATE_DIR/id_ed25519.pub" ]] || ssh-keygen -y -f "$STATE_DIR/id_ed25519" >"$STATE_DIR/id_ed25519.pub"
}

start_guests() {
  local g name ip image want state created=() reused=() pids=()
  for g in "${GUESTS[@]}"; do
    read -r name ip image <<<"$g"
    want="$(ldocker image inspect -f '{{.Id}}' "$image")"
    state="$(ldocker inspect -f '{{.State.Running}} {{.Image}} {{with index .NetworkSettings.Networks "phoenix-lab"}}{{.IPAddress}}{{end}}' "$name" 2>/dev/null || true)"
    if [[ "$state" == "true $want $ip" ]]; then reused+=("$name"); continue; fi
    if [[ -n "$state" ]]; then
      ldocker rm -f "$name" >/dev/null
    fi
    local extra=()
    if [[ "$image" == lab/vm ]]; then
      ldocker volume rm -f "phoenix-lab-$name-docker" >/dev/null 2>&1 || true
      ldocker volume create --label "$LAB_LABEL=volume" "phoenix-lab-$name-docker" >/dev/null
      extra=(-v "phoenix-lab-$name-docker:/var/lib/docker")
    fi
    ldocker run -d --name "$name" --hostname "$name" \
      --label "$LAB_LABEL=guest" --label "phoenix.lab.ip=$ip" \
      --network "$NET_NAME" --ip "$ip" \
      --privileged --tmpfs /run --tmpfs /run/lock --stop-signal SIGRTMIN+3 \
      -e container=docker "${extra[@]}" \
      "$image" /sbin/init >/dev/null &
    pids+=($!)
    created+=("$name")
  done
  local p rc=0; for p in "${pids[@]}"; do wait "$p" || rc=1; done
  ((rc == 0)) || die "starting guests failed"
  ((${#reused[@]} == 0)) || log "guests reused (running, image current): ${reused[*]}"
  ((${#created[@]} == 0)) || log "guests started: ${created[*]}"
}

# authorized_keys for root and phoenix (the key lives outside the image)
provision_keys() {
  local pub g name ip image pids=()
  pub="$(cat "$STATE_DIR/id_ed25519.pub")"
  for g in "${GUESTS[@]}"; do
    read -r name ip image <<<"$g"
    ldocker exec -i "$name" sh -ec '
      umask 077
      install -d -m 0700 /root/.ssh
      # Added, not replaced: another checkout on this machine may be using the same guests.
      touch /root/.ssh/authorized_keys
      grep -qxF "$1" /root/.ssh/authorized_keys || printf "%s\n" "$1" >>/root/.ssh/authorized_keys
      install -d -m 0700 -o phoenix -g phoenix /home/phoenix/.ssh
      touch /home/phoenix/.ssh/authorized_keys
      grep -qxF "$1" /home/phoenix/.ssh/authorized_keys || printf "%s\n" "$1" >>/home/phoenix/.ssh/authorized_keys
      chown phoenix:phoenix /home/phoenix/.ssh/authorized_keys' sh "$pub" &
    pids+=($!)
  done
  local p rc=0; for p in "${pids[@]}"; do wait "$p" || rc=1; done
  ((rc == 0)) || die "could not install the lab key into every guest"
}

wait_ssh_and_keyscan() {
  local deadline=$((SECONDS + 90)) g name ip image line pending
  declare -A keys=()
  while :; do
    pending=()
    for g in "${GUESTS[@]}"; do
      read -r name ip image <<<"$g"
      [[ -n "${keys[$ip]:-}" ]] && continue
      pending+=("$ip")
    done
    ((${#pending[@]})) || break
    while read -r line; do
      [[ "$line" == *" ssh-ed25519 "* ]] || continue
      keys[${line%% *}]="$line"
    done < <(ssh-keyscan -T 2 -t ed25519 "${pending[@]}" 2>/dev/null || true)
    [[ ${#keys[@]} -eq ${#GUESTS[@]} ]] && break
    if ((SECONDS >= deadline)); then
      die "sshd did not answer within 90 s on: ${pending[*]} (try: npm run lab:status)"
    fi
    sleep 0.3
  done
  : >"$STATE_DIR/known_hosts.new"
  for g in "${GUESTS[@]}"; do
    read -r name ip image <<<"$g"
    printf '%s\n' "${keys[$ip]}" >>"$STATE_DIR/known_hosts.new"
  done
  chmod 0644 "$STATE_DIR/known_hosts.new"
  mv -f "$STATE_DIR/known_hosts.new" "$STATE_DIR/known_hosts"
  log "sshd answers on all guests; host keys in $STATE_DIR/known_hosts"
}

verify_ssh() {
  local g name ip image pids=() names=() opts
  mapfile -t opts < <(ssh_opts)
  for g in "${GUESTS[@]}"; do
    read -r name ip image <<<"$g"
    (
      for _ in 1 2 3 4 5 6 7 8 9 10; do
        ssh "${opts[@]}" "phoenix@$ip" 'sudo -n true' </dev/null && exit 0
        sleep 0.5
      done
      exit 1
    ) &
    pids+=($!); names+=("$name")
  done
  local i failed=()
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || failed+=("${names[$i]}"); done
  ((${#failed[@]} == 0)) || die "ssh phoenix@ + sudo -n failed on: ${failed[*]}"
  log "ssh as phoenix (strict host key checking) + sudo -n: ok on all guests"
}

load_standins_into_vms() {
  local g name ip image pids=() names=() i failed=()
  for g in "${GUESTS[@]}"; do
    read -r name ip image <<<"$g"
    [[ "$image" == lab/vm ]] || continue
    load_standins_into "$name" &
    pids+=($!); names+=("$name")
  done
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || failed+=("${names[$i]}"); done
  ((${#failed[@]} == 0)) || die "stand-in images could not be loaded into: ${failed[*]}"
  refresh_standin_services
}

# A stand-in image that changed (e.g. its API moved with a product pin, docs/releases.md) is
# loaded under the same tag, but running swarm services keep the image their tasks started
# with. Restart (docker service update --force) the services that run a reloaded stand-in, on
# the swarm manager, so the lab serves what the repo says; their volumes keep their state.
refresh_standin_services() {
  local g name ip image mgr="" svc img reloaded
  # (no file: nothing was reloaded; under set -e/pipefail a failing cat must not end lab:up)
  reloaded="$(cat "$LAB_VAR"/standins-reloaded.* 2>/dev/null | sort -u || true)"
  rm -f "$LAB_VAR"/standins-reloaded.*
  [[ -n "$reloaded" ]] || return 0
  for g in "${GUESTS[@]}"; do
    read -r name ip image <<<"$g"
    [[ "$image" == lab/vm ]] || continue
    [[ "$(ldocker exec "$name" docker info -f '{{.Swarm.ControlAvailable}}' 2>/dev/null)" == true ]] && { mgr="$name"; break; }
  done
  [[ -n "$mgr" ]] || return 0
  while read -r svc img; do
    [[ -n "$svc" ]] && grep -qxF "${img%%@*}" <<<"$reloaded" || continue
    ldocker exec "$mgr" docker service update --force --detach -q "$svc" >/dev/null \
      && log "$mgr: service $svc restarted on the reloaded stand-in image ${img%%@*}" \
      || log "$mgr: service $svc could not be restarted (it keeps the previous stand-in image)"
  done < <(ldocker exec "$mgr" docker service ls --format '{{.Name}} {{.Image}}' 2>/dev/null)
}

load_standins_into() {
  local name="$1" deadline todo img want have
  deadline=$((SECONDS + 60))
  until ldocker exec "$name" docker info >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "inner dockerd on $name did not come up within 60 s"
    sleep 0.3
  done
  todo=()
  for img in "${STANDIN_IMAGES[@]}"; do
    want="$(ldocker image inspect -f '{{.Id}}' "$img")"
    have="$(ldocker exec "$name" docker image inspect -f '{{.Id}}' "$img" 2>/dev/null || true)"
    [[ "$want" == "$have" ]] || todo+=("$img")
  done
  if ((${#todo[@]})); then
    ldocker save "${todo[@]}" | ldocker exec -i "$name" docker load -q >/dev/null \
      || die "loading stand-in images into $name failed"
    printf '%s\n' "${todo[@]}" >"$LAB_VAR/standins-reloaded.$name"
    log "$name: loaded ${#todo[@]} stand-in image(s) into its dockerd"
  else
    log "$name: stand-in images already loaded"
  fi
}

finish_stepca() {
  STEPCA_JSON=null
  if [[ -n "$STEPCA_PID" ]]; then
    log "waiting for the step-ca build"
    wait "$STEPCA_PID" || true
  fi
  if [[ -x "$STEPCA_BIN" && -s "$STEPCA_BIN.sha256" ]] && "$STEPCA_BIN" version >/dev/null 2>&1; then
    STEPCA_JSON="$(jq -n --arg b "$STEPCA_BIN" --arg s "$(cat "$STEPCA_BIN.sha256")" '{binary: $b, sha256: $s}')"
  else
    [[ -f "$STEPCA_LOG" ]] && tail -n 30 "$STEPCA_LOG" >&2
    warn "##############################################################"
    warn "## step-ca binary NOT available: lab.json has \"stepCa\": null ##"
    warn "## build log: $STEPCA_LOG"
    warn "##############################################################"
  fi
}

# traefik-standin: the lab's stand-in for the Traefik binary (lab/standins/traefik/), which the
# traefik role installs at /usr/local/bin/traefik on lxc102 (lab/inventory.ts reads it from lab.json).
TRAEFIK_STANDIN_BIN="$LAB_CACHE/traefik-standin"
build_traefik_standin() {
  TRAEFIK_STANDIN_JSON=null
  if bash "$LAB_DIR/standins/traefik/build.sh" "$TRAEFIK_STANDIN_BIN" 9>&-; then
    TRAEFIK_STANDIN_JSON="$(jq -n --arg b "$TRAEFIK_STANDIN_BIN" --arg s "$(cat "$TRAEFIK_STANDIN_BIN.sha256")" '{binary: $b, sha256: $s}')"
  else
    warn "## traefik-standin NOT available: lab.json has \"traefikStandin\": null ##"
  fi
}

write_lab_json() {
  local hosts='{}' g name ip image
  for g in "${GUESTS[@]}"; do
    read -r name ip image <<<"$g"
    hosts="$(jq -c --arg n "$name" --arg a "$ip" '. + {($n): {address: $a, port: 22}}' <<<"$hosts")"
  done
  jq -n --arg key "$STATE_DIR/id_ed25519" --arg kh "$STATE_DIR/known_hosts" \
        --argjson hosts "$hosts" --argjson stepca "$STEPCA_JSON" --argjson traefik "$TRAEFIK_STANDIN_JSON" \
        --argjson imgs "$(printf '%s\n' "${STANDIN_IMAGES[@]}" | jq -R . | jq -sc .)" \
    '{user: "phoenix", key: $key, knownHosts: $kh, hosts: $hosts, stepCa: $stepca,
      traefikStandin: $traefik, standins: {images: $imgs}}' >"$STATE_DIR/lab.json.new"
  mv -f "$STATE_DIR/lab.json.new" "$STATE_DIR/lab.json"
}

# ---------------------------------------------------------------- main
ensure_packages
mkdir -p "$LAB_VAR" "$LAB_CACHE"
start_stepca_build
write_daemon_config
start_dockerd
ensure_network
build_base
build_vm
build_standins
add_docker_cli_to_portainer_standin
ensure_key
start_guests
provision_keys
wait_ssh_and_keyscan
verify_ssh
load_standins_into_vms
finish_stepca
build_traefik_standin
write_lab_json
# --- proxmox: the lab's Proxmox VE API stand-in; registers the five guests above (lab/README.md) ---
bash "$LAB_DIR/standins/proxmox/start.sh" || die "proxmox-standin did not start"
# --- end proxmox ---

log "lab up in $((SECONDS - START))s — $STATE_DIR/lab.json"
for g in "${GUESTS[@]}"; do
  read -r name ip image <<<"$g"
  printf '  %-7s %-16s %s\n' "$name" "$ip" "$image"
done
echo "  ssh: ssh -i .lab/id_ed25519 -o UserKnownHostsFile=.lab/known_hosts phoenix@<ip>"
