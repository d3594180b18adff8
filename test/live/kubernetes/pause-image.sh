#!/usr/bin/env bash
# The pod sandbox ("pause") image for the hand-run cluster test: no registry is reachable here,
# so containerd cannot pull registry.k8s.io/pause. A static C program that sleeps until
# SIGTERM/SIGINT and reaps children, as one-layer OCI archive for `ctr images import`.
#
#   test/live/kubernetes/pause-image.sh OUT.tar REF        Needs gcc and glibc's static libc.
set -euo pipefail
out=${1:?usage: $0 OUT.tar REF} ref=${2:?usage: $0 OUT.tar REF}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/pause.c" <<'C'
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
static void quit(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, 0, WNOHANG) > 0) {} }
int main(void) {
  signal(SIGINT, quit);
  signal(SIGTERM, quit);
  signal(SIGCHLD, reap);
  for (;;) pause();
}
C
mkdir -p "$work/root" "$work/oci/blobs/sha256"
gcc -static -O2 -s -o "$work/root/pause" "$work/pause.c"
blob() { # blob FILE: moves it into the layout, prints "sha256:<hex> <size>"
  local sha size
  sha=$(sha256sum "$1" | cut -d' ' -f1) size=$(stat -c %s "$1")
  mv "$1" "$work/oci/blobs/sha256/$sha"
  echo "sha256:$sha $size"
}
tar --numeric-owner --owner=0 --group=0 --mtime=@0 -C "$work/root" -cf "$work/layer.tar" pause
diff_id=sha256:$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
read -r layer layer_size < <(blob "$work/layer.tar")
printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/pause"],"User":"65535:65535"},"rootfs":{"type":"layers","diff_ids":["%s"]}}' "$diff_id" >"$work/config.json"
read -r config config_size < <(blob "$work/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' \
  "$config" "$config_size" "$layer" "$layer_size" >"$work/manifest.json"
read -r manifest manifest_size < <(blob "$work/manifest.json")
printf '{"imageLayoutVersion":"1.0.0"}' >"$work/oci/oci-layout"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
  "$manifest" "$manifest_size" "$ref" "${ref##*:}" >"$work/oci/index.json"
tar -C "$work/oci" -cf "$out" oci-layout index.json blobs
echo "$out"
