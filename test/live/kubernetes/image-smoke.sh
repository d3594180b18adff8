#!/usr/bin/env bash
# Hand-run check of the image and of the pod's contract without a cluster: unpacks the OCI
# archive of image/build-image.sh, then runs it the way the rendered StatefulSet does: root file
# system read-only, uid 10001, /var/lib/animus a writable "volume", /tmp and /run/animus empty,
# the Secret's .env a 0400 file. It runs the init step (`animus kubernetes prepare`, deploying
# a new echo agent), the runtime under tini, the probes, `animus send --wait` in the "pod", a
# SIGTERM stop, and a bad .env held as not ready with its reasons.
#
#   test/live/kubernetes/image-smoke.sh IMAGE.oci.tar
# Needs root (mount namespaces, chroot), unshare, setpriv (util-linux).
set -euo pipefail
archive=${1:?usage: $0 IMAGE.oci.tar}
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
log() { printf '[image-smoke %s +%ss] %s\n' "$(date +%T)" "$SECONDS" "$*" >&2; }

mkdir -p "$work/oci" "$work/rootfs" "$work/volume" "$work/secret"
tar -xf "$archive" -C "$work/oci"
manifest=$(node -e "const i=require('$work/oci/index.json');console.log(i.manifests[0].digest.slice(7))")
layer=$(node -e "const m=JSON.parse(require('fs').readFileSync('$work/oci/blobs/sha256/$manifest','utf8'));console.log(m.layers[0].digest.slice(7))")
tar -xzf "$work/oci/blobs/sha256/$layer" -C "$work/rootfs"
log "unpacked $(du -sh "$work/rootfs" | cut -f1) root"
id=agent-6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d
chown 10001:10001 "$work/volume"; chmod 0700 "$work/volume"
printf 'AGENT_ID=%s\nAGENT_API_KEY=sk-let-4f9a1c2e8b7d\n' "$id" >"$work/secret/agent.env"
chown 10001:10001 "$work/secret/agent.env"; chmod 0400 "$work/secret/agent.env"

# In the "pod": a private mount namespace, the root read-only, the pod's mounts, then uid 10001.
pod() {
  local pod_name=$1; shift
  unshare --mount --pid --fork --kill-child sh -c '
    set -e; r=$1; w=$2; pod=$3; shift 3
    mount --bind "$r" "$r"; mount -o remount,bind,ro "$r"
    mount -t proc proc "$r/proc"
    mount --bind /dev "$r/dev"
    mount --bind "$w/volume" "$r/var/lib/animus"
    mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
    mount -t tmpfs -o uid=10001,gid=10001,mode=0700 tmpfs "$r/run/animus"
    mount --bind "$w/secret" "$r/etc/animus/secret"
    exec chroot "$r" /usr/bin/setpriv --reuid=10001 --regid=10001 --clear-groups --no-new-privs \
      env -i PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 HOME=/tmp ANIMUS_IN_CONTAINER=1 ANIMUS_HOME=/var/lib/animus \
        ANIMUS_AGENT_DIR=/var/lib/animus/'"$id"' ANIMUS_CONFIG_DIR=/var/lib/animus/.animus/config \
        ANIMUS_STATUS_SOCKET=/run/animus/status.sock ANIMUS_SECRET_ENV=/etc/animus/secret/agent.env \
        ANIMUS_POD_NAME="$pod" ANIMUS_AWAIT_PUSH=0 ANIMUS_MODE=echo "$@"
  ' sh "$work/rootfs" "$work" "$pod_name" "$@"
}

t0=$SECONDS
pod animus-x-0 animus kubernetes prepare "$id" >/dev/null
log "init step (animus init + a new echo agent + its .env from the Secret) took $((SECONDS - t0)) s"
stat -c '%a %u' "$work/volume/$id" "$work/volume/$id/.env"

# The pod's main container: tini, the runtime; probes and a message through `kubectl exec`-like entries.
run_pod() {
  local name=$1
  pod "$name" sh -c '/usr/bin/tini -s -g -- node /var/lib/animus/'"$id"'/runtime/main.js & pid=$!
    for i in $(seq 1 100); do animus kubernetes probe ready >/dev/null 2>&1 && break; sleep 0.2; done
    animus --json kubernetes probe ready; echo "ready-probe-exit=$?"
    animus --json kubernetes probe live >/dev/null; echo "live-probe-exit=$?"
    '"${2:-true}"'
    touch /tmp/write-here-works; echo "tmp-writable=$?"
    (echo x > /opt/animus/x) 2>/dev/null; echo "root-write-exit=$?"
    kill -TERM $pid; wait $pid; echo "runtime-exit=$?"'
}
t0=$SECONDS
run_pod animus-x-0 'animus --json send '"$id"' "hello from the pod" --wait --timeout 30 | grep -o "\"reply\": \"[^\"]*\""'
log "runtime up, probed, answered and stopped in $((SECONDS - t0)) s"

log "a bad .env (a placeholder key in live mode): the runtime must stay up, not ready"
chmod 0600 "$work/secret/agent.env"
printf 'AGENT_ID=%s\nAGENT_ENDPOINT=https://api.letta.com\nAGENT_API_KEY=your_key_here\n' "$id" >"$work/secret/agent.env"
chmod 0400 "$work/secret/agent.env"
pod animus-x-0 animus kubernetes prepare "$id" >/dev/null
pod animus-x-0 animus settings set --agent "$id" message_mode live --force >/dev/null
run_pod animus-x-0 || true
