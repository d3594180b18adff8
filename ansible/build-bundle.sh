#!/usr/bin/env bash
# Packs this animus build (bin/, dist/, templates/, systemd/, package.json and the production
# node_modules, native better-sqlite3 included) into one reproducible archive for the playbooks:
# managed hosts get animus from the controller, never from a registry. The same build gives the
# same bytes (sorted names, fixed times and owners, gzip -n), so a second playbook run copies
# nothing. Prints the archive's path: <out>/animus-<version>-<sha256:12>.tar.gz
#
#   ansible/build-bundle.sh [OUT_DIR]     (default: ansible/.bundles; run `npm run build` first)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/ansible/.bundles}
cd "$root"
[ -f dist/runtime/main.js ] || { echo "build-bundle: dist/ is missing: run \`npm run build\` first" >&2; exit 3; }
version=$(node -p 'require("./package.json").version')
mkdir -p "$out"
tmp=$(mktemp "$out/.bundle.XXXXXX")
trap 'rm -f "$tmp"' EXIT
# Production packages only: what `npm ci --omit=dev` would install, read from the installed tree.
mapfile -t modules < <(npm ls --omit=dev --all --parseable 2>/dev/null | sed -n "s|^$root/||p" | grep '^node_modules/' | sort -u)
[ "${#modules[@]}" -gt 0 ] || { echo "build-bundle: no node_modules: run \`npm ci\` first" >&2; exit 3; }
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --mode='u+rwX,go+rX,go-w' \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  --exclude='node_modules/.cache' --exclude='*.map' \
  -cf - bin dist templates systemd package.json "${modules[@]}" | gzip -n -6 >"$tmp"
hash=$(sha256sum "$tmp" | cut -c1-12)
final=$out/animus-$version-$hash.tar.gz
if [ -f "$final" ]; then rm -f "$tmp"; else chmod 0644 "$tmp"; mv "$tmp" "$final"; fi
trap - EXIT
echo "$final"
