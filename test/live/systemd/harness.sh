#!/usr/bin/env bash
# A real systemd 252 as PID 1 of a throwaway systemd-nspawn container, for the live suite
# (test/live/systemd.test.ts). The machine's own PID 1 need not be systemd and nothing of
# the host's packages or services is changed.
#
#   harness.sh check            exit 0 when this machine can run it; else one line saying why
#   harness.sh prepare          the cached Debian 12 root and the unpacked systemd-nspawn
#   harness.sh boot DIR         boot an overlay of the cached root (upper layer in DIR), with
#                               node and this build of animus in /opt/animus
#   harness.sh sh DIR CMD...    run CMD as root inside the container (all its namespaces)
#   harness.sh reboot DIR       `systemctl reboot` inside, then boot the same overlay again
#   harness.sh stop DIR         power off; remove the cgroups, mounts and DIR it made, by pid
#
# The root is debootstrapped once into ANIMUS_LIVE_CACHE (default /var/cache/animus-test),
# in a temporary folder renamed into place when whole, and built again when missing or when
# the recipe below changes. Each boot gets its own overlay, so the cache stays pristine.
# Each phase prints its time on stderr as `[harness] <phase>: N.N s`.
set -euo pipefail

CACHE=${ANIMUS_LIVE_CACHE:-/var/cache/animus-test}
ROOT=$CACHE/debian-systemd-root
SRC=${ANIMUS_SRC:-$(cd "$(dirname "$0")/../../.." && pwd)}
NODE=${NODE:-$(command -v node)}
SUITE=bookworm
PACKAGES=systemd,systemd-sysv,dbus,libpam-systemd,git,procps,ca-certificates
# Units the tests do not need, disabled so the container boots quietly and quickly.
QUIET_UNITS="apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer fstrim.timer e2scrub_reap.service getty@tty1.service systemd-pstore.service"

log() { printf '[harness] %s\n' "$*" >&2; }
now() { date +%s.%N; }
took() { log "$1: $(awk -v a="$2" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }')"; }
die() { log "$*"; exit 1; }

# What the cached root is made of; a change here builds it again.
recipe() {
  printf 'suite=%s\npackages=%s\nquiet=%s\n' "$SUITE" "$PACKAGES" "$QUIET_UNITS"
  declare -f configure_root
}

configure_root() {
  local r=$1
  echo animus-live >"$r/etc/hostname"
  # A login user for the --user manager (the system account is made by the tests with
  # `animus systemd install --create-user`).
  chroot "$r" useradd --create-home --shell /bin/bash --uid 1000 alice
  for u in $QUIET_UNITS; do chroot "$r" systemctl disable "$u" >/dev/null 2>&1 || true; done
  # The machine id is made at each boot (the overlay), not baked into the cache.
  : >"$r/etc/machine-id"
}

mirror() {
  awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null ||
    awk '/^deb / { print $2; exit }' /etc/apt/sources.list 2>/dev/null
}

nspawn_path() { echo "$CACHE/nspawn-$(dpkg-query -W -f='${Version}' libsystemd-shared)/usr/bin/systemd-nspawn"; }

check() {
  [ "$(id -u)" = 0 ] || { echo "needs root (debootstrap, mounts, systemd-nspawn); running as uid $(id -u)"; return 1; }
  [ "$(uname -s)" = Linux ] || { echo "needs Linux"; return 1; }
  command -v dpkg-query >/dev/null && dpkg-query -W libsystemd-shared >/dev/null 2>&1 || { echo "needs a Debian host with libsystemd-shared (for a matching systemd-nspawn)"; return 1; }
  command -v debootstrap >/dev/null || [ -x "$ROOT/lib/systemd/systemd" ] || { echo "needs debootstrap (apt-get install debootstrap)"; return 1; }
  command -v nsenter >/dev/null || { echo "needs nsenter (util-linux)"; return 1; }
  grep -qw overlay /proc/filesystems || { echo "needs overlayfs in the kernel"; return 1; }
  [ -d /sys/fs/cgroup/systemd ] || [ -f /sys/fs/cgroup/cgroup.controllers ] || { echo "needs a name=systemd or unified cgroup hierarchy"; return 1; }
  [ -x "$NODE" ] || { echo "needs node at $NODE"; return 1; }
  [ -f "$SRC/dist/cli/main.cjs" ] || [ -d "$SRC/dist" ] || { echo "needs a build of animus in $SRC/dist (npm run build)"; return 1; }
}

prepare_nspawn() {
  local t0 nspawn ver dir
  nspawn=$(nspawn_path)
  [ -x "$nspawn" ] && return
  t0=$(now)
  ver=$(dpkg-query -W -f='${Version}' libsystemd-shared)
  dir=$(dirname "$(dirname "$(dirname "$nspawn")")")
  local tmp
  tmp=$(mktemp -d "$CACHE/.nspawn.XXXXXX")
  # Unpacked, never installed: installing systemd-container would upgrade the host's systemd.
  if ! (cd "$tmp" && apt-get download -qq "systemd-container=$ver" 2>/dev/null); then
    apt-get update -qq
    (cd "$tmp" && apt-get download -qq "systemd-container=$ver")
  fi
  dpkg -x "$tmp"/systemd-container_*.deb "$tmp/x"
  rm -rf "$dir"
  mv "$tmp/x" "$dir"
  rm -rf "$tmp"
  took "unpack systemd-nspawn $ver" "$t0"
}

prepare_root() {
  local want t0 tmp
  want=$(recipe | sha256sum | cut -c1-16)
  if [ -x "$ROOT/lib/systemd/systemd" ] && [ "$(cat "$ROOT/.animus-recipe" 2>/dev/null)" = "$want" ]; then
    log "cached root $ROOT (recipe $want)"
    return
  fi
  t0=$(now)
  command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  tmp=$(mktemp -d "$CACHE/.root.XXXXXX")
  # Built aside and renamed into place when whole: a killed build leaves no half root.
  if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$tmp/root" "$(mirror)" >"$tmp/debootstrap.log" 2>&1; then
    tail -20 "$tmp/debootstrap.log" >&2
    rm -rf "$tmp"
    die "debootstrap failed"
  fi
  configure_root "$tmp/root"
  echo "$want" >"$tmp/root/.animus-recipe"
  if [ -e "$ROOT" ]; then mv "$ROOT" "$tmp/old"; fi
  mv "$tmp/root" "$ROOT"
  rm -rf "$tmp"
  took "debootstrap the root (recipe $want)" "$t0"
}

prepare() {
  mkdir -p "$CACHE"
  chmod 0755 "$CACHE"
  # One build at a time, also across test runs started side by side.
  exec 9>"$CACHE/.lock"
  flock 9
  prepare_nspawn
  prepare_root
  flock -u 9
}

leader() { cat "$1/leader.pid"; }

in_ct() {
  local dir=$1
  shift
  nsenter -t "$(leader "$dir")" -a env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 TERM=dumb SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}

cgroup_name() { echo "animus-live-$(basename "$1")"; }

# Node and this build of animus, into the overlay (its node_modules is bound in read-only).
install_animus() {
  local m=$1/merged
  install -m 0755 "$NODE" "$m/usr/bin/node"
  rm -rf "$m/opt/animus"
  mkdir -p "$m/opt/animus/node_modules"
  cp -a "$SRC/bin" "$SRC/dist" "$SRC/templates" "$SRC/systemd" "$SRC/package.json" "$m/opt/animus/"
  [ -d "$SRC/test/live/systemd/probe" ] && cp -a "$SRC/test/live/systemd/probe" "$m/opt/animus/probe"
  chmod -R a+rX "$m/opt/animus"
  ln -sf /opt/animus/bin/animus.js "$m/usr/local/bin/animus"
}

start_nspawn() {
  local dir=$1 nspawn cg pid="" p
  nspawn=$(nspawn_path)
  cg=$(cgroup_name "$dir")
  # A cgroup of our own in the hierarchies systemd manages, so nspawn's cgroups are made
  # under it, not at the root of the host's hierarchies, and can be removed afterwards.
  for h in systemd unified; do [ -d "/sys/fs/cgroup/$h" ] && mkdir -p "/sys/fs/cgroup/$h/$cg"; done
  rm -f "$dir/nspawn.pid" "$dir/leader.pid"
  (
    for h in systemd unified; do [ -d "/sys/fs/cgroup/$h/$cg" ] && echo $BASHPID >"/sys/fs/cgroup/$h/$cg/cgroup.procs"; done
    exec setsid bash -c 'echo $$ >"$0/nspawn.pid"; exec "$@"' "$dir" \
      "$nspawn" -D "$dir/merged" -M "$cg" --register=no --keep-unit --console=pipe \
      --bind-ro="$SRC/node_modules:/opt/animus/node_modules" -b </dev/null >>"$dir/nspawn.log" 2>&1
  ) &
  for _ in $(seq 1 600); do
    [ -s "$dir/nspawn.pid" ] && pid=$(cat "$dir/nspawn.pid")
    if [ -n "$pid" ]; then
      # The container's PID 1: a child of nspawn whose innermost pid is 1.
      for p in $(ps -o pid= --ppid "$pid" 2>/dev/null); do
        if awk '/^NSpid:/ { exit !($NF == 1 && NF > 2) }' "/proc/$p/status" 2>/dev/null; then
          echo "$p" >"$dir/leader.pid"
          break 2
        fi
      done
      kill -0 "$pid" 2>/dev/null || break
    fi
    sleep 0.1
  done
  [ -s "$dir/leader.pid" ] || { cat "$dir/nspawn.log" >&2; die "the container did not start (nspawn's log above)"; }
  local state
  state=$(timeout 120 bash -c "$(declare -f in_ct leader); until in_ct \"\$0\" systemctl is-system-running --wait 2>/dev/null; do sleep 0.3; done" "$dir" | tail -1) || true
  [ "$state" = running ] || { in_ct "$dir" systemctl --failed --no-pager >&2 || true; log "is-system-running: $state"; }
}

boot() {
  local dir=$1 t0
  t0=$(now)
  mkdir -p "$dir/upper" "$dir/work" "$dir/merged"
  mountpoint -q "$dir/merged" || mount -t overlay overlay -o "lowerdir=$ROOT,upperdir=$dir/upper,workdir=$dir/work" "$dir/merged"
  install_animus "$dir"
  took "overlay + copy node and animus" "$t0"
  t0=$(now)
  start_nspawn "$dir"
  took "boot systemd" "$t0"
}

wait_gone() {
  local pid=$1
  for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  return 1
}

reboot() {
  local dir=$1 t0 pid
  t0=$(now)
  pid=$(cat "$dir/nspawn.pid")
  in_ct "$dir" systemctl reboot --no-block >/dev/null 2>&1 || true
  # nspawn exits (status 133) when its container reboots; the harness boots it again.
  wait_gone "$pid" || die "the container did not go down for the reboot"
  start_nspawn "$dir"
  took "reboot" "$t0"
}

stop() {
  local dir=$1 t0 pid cg
  t0=$(now)
  [ -d "$dir" ] || return 0
  pid=$(cat "$dir/nspawn.pid" 2>/dev/null) || true
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    { [ -s "$dir/leader.pid" ] && in_ct "$dir" systemctl poweroff --no-block >/dev/null 2>&1; } || kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid"; then
      log "nspawn $pid still up after poweroff: SIGTERM, then SIGKILL"
      kill -TERM "$pid" 2>/dev/null || true
      sleep 3
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  cg=$(cgroup_name "$dir")
  for h in systemd unified; do
    local c=/sys/fs/cgroup/$h/$cg
    [ -d "$c" ] || continue
    # Anything still in our cgroups is ours: killed by pid before the cgroups go.
    for p in $(find "$c" -name cgroup.procs -exec cat {} + 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  rm -rf "/run/systemd/nspawn/propagate/$cg" "/run/systemd/nspawn/unix-export/$cg"
  if mountpoint -q "$dir/merged"; then umount -R "$dir/merged"; fi
  rm -rf "$dir"
  local left
  left=$(ls -d /sys/fs/cgroup/*/"$cg" 2>/dev/null | tr '\n' ' ') || true
  took "stop and clean up${left:+ (cgroups left: $left)}" "$t0"
}

case "${1:-}" in
  check) check ;;
  prepare) prepare ;;
  boot) boot "${2:?boot DIR}" ;;
  sh) dir=${2:?sh DIR CMD...}; shift 2; in_ct "$dir" "$@" ;;
  reboot) reboot "${2:?reboot DIR}" ;;
  stop) stop "${2:?stop DIR}" ;;
  *) echo "usage: $0 check|prepare|boot DIR|sh DIR CMD...|reboot DIR|stop DIR" >&2; exit 2 ;;
esac
