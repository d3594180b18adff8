import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describeError } from '../core/errors.js';
import { runPool } from '../core/pool.js';
import { isArchiveName } from './archive-format.js';
import { readManifest } from './read-archive.js';

export interface ArchiveEntry {
  archive: string;
  /** From the manifest; from the file name when the manifest is unreadable. */
  agentId: string;
  createdAt: string | null;
  bytes: number;
  encrypted: boolean | null;
  schemaVersion: number | null;
  animusVersion: string | null;
  commit: string | null;
  /** Set when the manifest cannot be read: the archive will not restore. */
  problem?: string;
}

/**
 * Archives under `dir` (its per-agent folders and the folder itself), newest first,
 * read from their manifests only. Checksums are `backup verify`'s job.
 */
export async function listArchives(dir: string, agentId?: string): Promise<ArchiveEntry[]> {
  const root = resolve(dir);
  const paths: string[] = [];
  const top = await readdir(root, { withFileTypes: true }).catch(() => []);
  for (const entry of top) {
    if (entry.isFile() && isArchiveName(entry.name, agentId)) paths.push(join(root, entry.name));
    if (entry.isDirectory() && entry.name.startsWith('agent-') && (!agentId || entry.name === agentId)) {
      const inner = await readdir(join(root, entry.name)).catch(() => []);
      for (const name of inner) if (isArchiveName(name, agentId)) paths.push(join(root, entry.name, name));
    }
  }
  const outcomes = await runPool(paths, 32, async (path): Promise<ArchiveEntry> => {
    const { manifest, fileBytes } = await readManifest(path);
    return {
      archive: path,
      agentId: manifest.agentId,
      createdAt: manifest.createdAt,
      bytes: fileBytes,
      encrypted: manifest.encrypted,
      schemaVersion: manifest.schemaVersion,
      animusVersion: manifest.animusVersion,
      commit: manifest.clone.commit,
    };
  });
  const entries = outcomes.map((outcome, i): ArchiveEntry => {
    if (outcome.ok) return outcome.value;
    const name = paths[i]!.split('/').pop()!;
    return { archive: paths[i]!, agentId: name.split('_')[0]!, createdAt: null, bytes: 0, encrypted: null, schemaVersion: null, animusVersion: null, commit: null, problem: describeError(outcome.error) };
  });
  return entries.sort((a, b) => (b.createdAt ?? '').localeCompare(a.createdAt ?? '') || b.archive.localeCompare(a.archive));
}
