import { copyFile, link, lstat, mkdir, readdir, readlink, symlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Makes `dest` a clone equal to the fresh clone `source`, without running git: what
 * `git clone --local` does for each agent, done once and then replicated. Object
 * files (immutable in git: it writes new ones, never edits old ones) are hardlinked
 * like `git clone --local` does; everything else is copied, with modes and modified
 * times kept so the copied index still matches its working tree. The result has its
 * own .git and no alternates: it is as independent as a clone.
 */
export async function replicateClone(source: string, dest: string): Promise<void> {
  await copyTree(source, dest, false);
}

async function copyTree(from: string, to: string, underObjects: boolean): Promise<void> {
  const info = await lstat(from);
  await mkdir(to, { mode: info.mode & 0o7777 });
  const entries = await readdir(from, { withFileTypes: true });
  await Promise.all(
    entries.map(async (entry) => {
      const source = join(from, entry.name);
      const target = join(to, entry.name);
      if (entry.isDirectory()) return copyTree(source, target, underObjects || (from.endsWith('.git') && entry.name === 'objects'));
      if (entry.isSymbolicLink()) return symlink(await readlink(source), target);
      if (underObjects) return link(source, target);
      const stat = await lstat(source);
      await copyFile(source, target);
      await utimes(target, stat.atime, stat.mtime);
    }),
  );
}
