import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/**
 * The folder of the installed animus package (where package.json, dist/, templates/
 * and systemd/ are), found from this module's location so it works from src/ under
 * the tests, from dist/ chunks, and from a global npm install.
 */
export function packageRoot(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === 'animus') return (cached = dir);
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the animus package root');
    dir = parent;
  }
}

export function packageManifest(): { version: string; dependencies: Record<string, string> } {
  return JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8'));
}

/** Where Node would resolve a bare package name from the animus package (handles hoisting). */
export function findInstalledPackage(name: string, from: string = packageRoot()): string | undefined {
  let dir = from;
  for (;;) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}
