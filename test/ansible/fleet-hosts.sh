#!/usr/bin/env bash
# Test hosts for the Ansible suite: each host is a network namespace joined to this machine by a
# veth pair (10.213.N.1 here, 10.213.N.2 there), a mount and pid namespace whose root is an overlay
# of one cached, debootstrapped Debian 12 root, and its own sshd as the namespace's PID 1.
# Killing that PID 1 ends every process of the host and drops its mounts with its mount namespace,
# so cleanup is: kill by pid, delete the namespace, delete the folder.
#
#   fleet-hosts.sh base            build the base root if missing (cached; built aside, renamed)
#   fleet-hosts.sh up DIR N...     start hosts N... with their state in DIR (keys, pids, roots)
#   fleet-hosts.sh down DIR        stop every host recorded in DIR and delete DIR
#
# Needs root, ip (iproute2), unshare, debootstrap, ssh-keygen. Only the addresses of the veths
# made here are used.
set -euo pipefail

CACHE=${ANIMUS_TEST_CACHE:-/var/cache/animus-test}
# The packages a managed host needs: sshd for Ansible's connection, python3 for its modules,
# sudo for become, git for the agents' clones, procps for ps/pgrep.
INCLUDE=openssh-server,python3,sudo,git,procps,ca-certificates
BASE=$CACHE/debian-bookworm-$(printf '%s' "$INCLUDE" | sha256sum | cut -c1-12)
MIRROR=${MIRROR:-$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || echo http://deb.debian.org/debian)}

log() { printf '[fleet-hosts %s] %s\n' "$(date +%T)" "$*" >&2; }

base() {
  if [ -x "$BASE/usr/sbin/sshd" ] && [ -f "$BASE/.complete" ]; then echo "$BASE"; return; fi
  mkdir -p "$CACHE"
  local tmp t0=$SECONDS
  tmp=$(mktemp -d "$CACHE/.build.XXXXXX")
  log "debootstrap of $BASE (into $tmp)"
  if ! nice -n 19 debootstrap --variant=minbase --include="$INCLUDE" bookworm "$tmp/root" "$MIRROR" >"$tmp/debootstrap.log" 2>&1; then
    tail -20 "$tmp/debootstrap.log" >&2; rm -rf "$tmp"; return 1
  fi
  # Host keys are made per host at start; the root must not carry one shared by every host.
  rm -f "$tmp"/root/etc/ssh/ssh_host_*
  chroot "$tmp/root" sh -c 'id animus >/dev/null 2>&1 || useradd --create-home --shell /bin/bash animus'
  echo 'animus ALL=(ALL) NOPASSWD:ALL' >"$tmp/root/etc/sudoers.d/animus"; chmod 0440 "$tmp/root/etc/sudoers.d/animus"
  touch "$tmp/root/.complete"
  rm -rf "$BASE"
  mv "$tmp/root" "$BASE"
  rm -rf "$tmp"
  log "base root ready in $((SECONDS - t0)) s"
  echo "$BASE"
}

up() {
  local dir=$1; shift
  local root; root=$(base)
  mkdir -p "$dir"
  [ -f "$dir/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C animus-test -f "$dir/id_ed25519"
  local run; run=$(basename "$dir" | tr -dc 'a-z0-9' | tail -c 5)
  for n in "$@"; do
    local h=$dir/h$n ns=animus-$run-h$n out=av$run$n in=ah$run$n
    mkdir -p "$h/upper" "$h/work" "$h/merged"
    echo "$ns" >"$h/netns"
    ip netns add "$ns"
    ip link add "$out" type veth peer name "$in"
    ip link set "$in" netns "$ns"
    ip addr add "10.213.$n.1/24" dev "$out"; ip link set "$out" up
    ip -n "$ns" addr add "10.213.$n.2/24" dev "$in"; ip -n "$ns" link set "$in" up; ip -n "$ns" link set lo up
    # The host's own files: its ssh host key and root's authorized key, in the upper layer.
    mkdir -p "$h/upper/etc/ssh" "$h/upper/root/.ssh"
    ssh-keygen -q -t ed25519 -N '' -f "$h/upper/etc/ssh/ssh_host_ed25519_key"
    cp "$dir/id_ed25519.pub" "$h/upper/root/.ssh/authorized_keys"; chmod 700 "$h/upper/root/.ssh"; chmod 600 "$h/upper/root/.ssh/authorized_keys"
    echo "fleet-h$n" >"$h/upper/etc/hostname"
    printf '127.0.0.1 localhost fleet-h%s\n' "$n" >"$h/upper/etc/hosts"
    # PID 1 of the host: sshd, chrooted into the overlay, in its own mount and pid namespaces.
    # --kill-child: if unshare dies, so does the host.
    setsid ip netns exec "$ns" unshare --mount --uts --pid --fork --kill-child --propagation private \
      sh -c '
        set -e; h=$1; lower=$2; hostname fleet-h'"$n"'
        mount -t overlay overlay -o "lowerdir=$lower,upperdir=$h/upper,workdir=$h/work" "$h/merged"
        m=$h/merged
        mount -t proc proc "$m/proc"
        mount --rbind /dev "$m/dev"
        mount -t tmpfs -o mode=0755 tmpfs "$m/run"
        mount -t tmpfs -o mode=1777 tmpfs "$m/tmp"
        mkdir -p "$m/run/sshd"
        exec chroot "$m" /usr/sbin/sshd -D -e -o ListenAddress=10.213.'"$n"'.2 -o PermitRootLogin=prohibit-password \
          -o HostKey=/etc/ssh/ssh_host_ed25519_key -o UseDNS=no
      ' sh "$h" "$root" </dev/null >"$h/sshd.log" 2>&1 &
    echo $! >"$h/unshare.pid"
  done
  for n in "$@"; do
    local ok=
    for _ in $(seq 1 200); do
      if ssh_to "$dir" "$n" true 2>/dev/null; then ok=1; break; fi
      sleep 0.1
    done
    [ -n "$ok" ] || { log "host $n did not answer on ssh:"; cat "$dir/h$n/sshd.log" >&2; return 1; }
  done
  log "hosts $* up"
}

ssh_to() {
  local dir=$1 n=$2; shift 2
  ssh -i "$dir/id_ed25519" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o LogLevel=ERROR -o ConnectTimeout=2 "root@10.213.$n.2" "$@"
}

down() {
  local dir=$1 h
  [ -d "$dir" ] || return 0
  for h in "$dir"/h*/; do
    [ -d "$h" ] || continue
    local pid; pid=$(cat "$h/unshare.pid" 2>/dev/null || true)
    if [ -n "$pid" ]; then
      # unshare's child is the host's PID 1; killing it ends the whole pid namespace.
      local child; child=$(ps -o pid= --ppid "$pid" 2>/dev/null | tr -d ' ' || true)
      [ -n "$child" ] && kill -9 "$child" 2>/dev/null || true
      kill -9 "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    local ns; ns=$(cat "$h/netns" 2>/dev/null || true)
    [ -n "$ns" ] && ip netns del "$ns" 2>/dev/null || true
  done
  # The overlay's work dir holds a 0000 folder; rm as root handles it once nothing is mounted.
  rm -rf "$dir"
}

case "${1:-}" in
  base) base ;;
  up) shift; up "$@" ;;
  down) down "$2" ;;
  ssh) shift; ssh_to "$@" ;;
  *) echo "usage: $0 base | up DIR N... | down DIR | ssh DIR N CMD..." >&2; exit 2 ;;
esac
