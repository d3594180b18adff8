#!/usr/bin/env bash
# Builds the animus OCI image without a registry: a debootstrapped Debian 12 root (minbase plus
# tini, git, ca-certificates), this machine's node (Node 20, same glibc) and this animus build
# (CLI and runtime with their production node_modules, from ansible/build-bundle.sh), written as
# an OCI image archive by hand (one layer) that `ctr images import` and `podman load` read.
#
#   image/build-image.sh [--out FILE] [--tag REF] [--cache DIR]
#     --out    the archive (default: image/.build/animus-<version>.oci.tar)
#     --tag    the image name inside it (default: localhost/animus:<version>)
#     --cache  where the Debian root is kept between builds (default: /var/cache/animus-image);
#              it is built into a temp folder and renamed, and rebuilt when missing
#   then:  ctr -n k8s.io images import --index-name localhost/animus:<version> FILE
#
# The image runs as uid 10001 (animus), its root file system can be mounted read-only: the
# home is /var/lib/animus (the agent's volume), /tmp and /run/animus are emptyDirs, and the
# StatefulSet that `animus kubernetes render` writes mounts exactly those. Needs root
# (debootstrap, chroot), debootstrap, tar, gzip, sha256sum, node.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=$(node -p "require('$root/package.json').version")
out=$root/image/.build/animus-$version.oci.tar
tag=localhost/animus:$version
cache=/var/cache/animus-image
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --cache) cache=$2; shift 2 ;;
    *) echo "usage: $0 [--out FILE] [--tag REF] [--cache DIR]" >&2; exit 2 ;;
  esac
done
log() { printf '[build-image %s +%ss] %s\n' "$(date +%T)" "$SECONDS" "$*" >&2; }
mirror=${MIRROR:-$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || echo http://deb.debian.org/debian)}
include=tini,git,ca-certificates
base=$cache/debian-bookworm-$(printf '%s' "$include" | sha256sum | cut -c1-12)

if [ ! -f "$base/.complete" ]; then
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/.build.XXXXXX")
  log "debootstrap minbase + $include"
  if ! nice -n 19 debootstrap --variant=minbase --include="$include" bookworm "$tmp/root" "$mirror" >"$tmp/debootstrap.log" 2>&1; then
    tail -20 "$tmp/debootstrap.log" >&2; rm -rf "$tmp"; exit 1
  fi
  # What a container never uses: package caches, docs, man pages, locales but C.
  rm -rf "$tmp"/root/var/cache/apt/* "$tmp"/root/var/lib/apt/lists/* "$tmp"/root/usr/share/doc/* "$tmp"/root/usr/share/man/* "$tmp"/root/usr/share/info/*
  touch "$tmp/root/.complete"
  rm -rf "$base"; mv "$tmp/root" "$base"; rm -rf "$tmp"
  log "Debian root cached in $base"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log "assembling the root"
cp -a "$base" "$work/rootfs"
rootfs=$work/rootfs
rm -f "$rootfs/.complete"
install -m 0755 "$(readlink -f "$(command -v node)")" "$rootfs/usr/local/bin/node"
bundle=$(bash "$root/ansible/build-bundle.sh" "$work/bundle")
mkdir -p "$rootfs/opt/animus"
tar -xzf "$bundle" -C "$rootfs/opt/animus"
ln -sf /opt/animus/bin/animus.js "$rootfs/usr/local/bin/animus"
chroot "$rootfs" sh -c 'groupadd --system --gid 10001 animus && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/animus --no-create-home --shell /usr/sbin/nologin animus'
mkdir -p "$rootfs/var/lib/animus" "$rootfs/run/animus" "$rootfs/etc/animus/secret"
chown 10001:10001 "$rootfs/var/lib/animus" "$rootfs/run/animus"
chmod 0700 "$rootfs/var/lib/animus" "$rootfs/run/animus"
# Smoke test inside the root before it is sealed: the CLI and the runtime's native module load.
chroot "$rootfs" /usr/local/bin/node /opt/animus/bin/animus.js --version >/dev/null
chroot "$rootfs" /usr/local/bin/node -e "require('/opt/animus/node_modules/better-sqlite3')(':memory:').close()"

log "writing the OCI archive"
oci=$work/oci
mkdir -p "$oci/blobs/sha256"
layer=$work/layer.tar.gz
tar --sort=name --numeric-owner --xattrs -C "$rootfs" -cf - . | gzip -n -6 >"$layer"
diff_id=$(gzip -dc "$layer" | sha256sum | cut -d' ' -f1)
layer_sha=$(sha256sum "$layer" | cut -d' ' -f1)
layer_size=$(stat -c %s "$layer")
mv "$layer" "$oci/blobs/sha256/$layer_sha"
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
cat >"$work/config.json" <<JSON
{"architecture":"amd64","os":"linux","created":"$created",
 "config":{"User":"10001:10001","WorkingDir":"/var/lib/animus",
   "Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","LANG=C.UTF-8","HOME=/tmp","ANIMUS_HOME=/var/lib/animus","ANIMUS_IN_CONTAINER=1"],
   "Entrypoint":["/usr/bin/tini","-s","-g","--"],"Cmd":["animus","--help"],
   "Volumes":{"/var/lib/animus":{}},
   "Labels":{"org.opencontainers.image.title":"animus","org.opencontainers.image.version":"$version"}},
 "rootfs":{"type":"layers","diff_ids":["sha256:$diff_id"]},
 "history":[{"created":"$created","created_by":"image/build-image.sh"}]}
JSON
config_sha=$(sha256sum "$work/config.json" | cut -d' ' -f1)
config_size=$(stat -c %s "$work/config.json")
mv "$work/config.json" "$oci/blobs/sha256/$config_sha"
cat >"$work/manifest.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
 "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$config_sha","size":$config_size},
 "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:$layer_sha","size":$layer_size}]}
JSON
manifest_sha=$(sha256sum "$work/manifest.json" | cut -d' ' -f1)
manifest_size=$(stat -c %s "$work/manifest.json")
mv "$work/manifest.json" "$oci/blobs/sha256/$manifest_sha"
printf '{"imageLayoutVersion":"1.0.0"}' >"$oci/oci-layout"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s","io.containerd.image.name":"%s"}}]}' \
  "$manifest_sha" "$manifest_size" "${tag##*:}" "$tag" >"$oci/index.json"
mkdir -p "$(dirname "$out")"
tar -C "$oci" -cf "$out.tmp" oci-layout index.json blobs
mv "$out.tmp" "$out"
log "wrote $out ($(du -h "$out" | cut -f1)), $tag, layer sha256:${layer_sha:0:12}"
echo "$out"
