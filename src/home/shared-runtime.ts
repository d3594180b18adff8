import { lstat, readlink, rename, rm, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { AnimusError } from '../core/errors.js';
import { ensureDir } from '../core/fs.js';
import { findInstalledPackage } from '../core/package-root.js';

/**
 * The packages an instance's code imports. Installed once for the whole home (the
 * guide's shared venv): `<home>/node_modules` holds a link to each, and Node finds
 * them from every agent's `runtime/` clone by walking up the folder tree. No agent
 * has a node_modules of its own. dotenv stays although this runtime reads .env files
 * itself: an agent rolled back to an older runtime build still imports it.
 */
export const RUNTIME_DEPENDENCIES = ['better-sqlite3', 'dotenv', 'telegram'] as const;

export interface LinkRepair {
  name: string;
  target: string;
  action: 'created' | 'relinked' | 'ok';
}

/** Points each shared dependency at animus's own installed copy; repairs wrong or broken links. */
export async function ensureSharedRuntime(sharedModules: string): Promise<LinkRepair[]> {
  await ensureDir(sharedModules, 0o755);
  const results: LinkRepair[] = [];
  for (const name of RUNTIME_DEPENDENCIES) {
    const target = findInstalledPackage(name);
    if (!target) {
      throw new AnimusError('EIO', `dependency ${name} of animus is not installed: reinstall animus (npm install) and run \`animus init\` again`);
    }
    const link = join(sharedModules, name);
    results.push({ name, target, action: await ensureLink(link, target) });
  }
  return results;
}

async function ensureLink(link: string, target: string): Promise<LinkRepair['action']> {
  let existing: string | undefined;
  try {
    const info = await lstat(link);
    existing = info.isSymbolicLink() ? await readlink(link) : '';
  } catch {
    existing = undefined;
  }
  if (existing === target) return 'ok';
  await ensureDir(dirname(link), 0o755);
  if (existing === '') await rm(link, { recursive: true, force: true });
  // Made beside and renamed over: two animus commands repairing at once cannot collide.
  const temp = `${link}.${process.pid}.tmp`;
  await rm(temp, { force: true });
  await symlink(target, temp, 'dir');
  await rename(temp, link);
  return existing === undefined ? 'created' : 'relinked';
}
