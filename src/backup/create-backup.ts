import { randomBytes } from 'node:crypto';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { AnimusError, describeError } from '../core/errors.js';
import { ensureDir, fileMode } from '../core/fs.js';
import { packageManifest } from '../core/package-root.js';
import { readHeadCommit } from '../git/repo.js';
import { readRemoteUrl } from '../health/git-state.js';
import { homeLayout, type AgentPaths } from '../home/layout.js';
import { cloneDir } from '../instances/registry.js';
import { openDatabase } from '../store/database.js';
import { schemaVersion } from '../store/migrations.js';
import { snapshotDatabase } from '../store/snapshot.js';
import { archiveName, FORMAT, FORMAT_VERSION, isArchiveName, type Manifest } from './archive-format.js';
import type { ArchiveKey } from './cipher.js';
import { writeArchive, type ArchiveSource } from './write-archive.js';

export interface BackupOptions {
  /** Folder that receives `<agent-id>/<archive>`; default `<home>/backups`. */
  outDir: string;
  /** Keep only the newest N archives of each agent backed up (older ones are deleted after a successful backup). */
  keep?: number;
  key?: ArchiveKey;
  now?: () => Date;
}

export interface BackupResult {
  id: string;
  archive: string;
  bytes: number;
  createdAt: string;
  encrypted: boolean;
  schemaVersion: number;
  commit: string | null;
  files: Array<{ name: string; size: number; sha256: string }>;
  /** Older archives deleted by --keep. */
  pruned: string[];
}

export function defaultBackupDir(home: string): string {
  return homeLayout(home).backupsDir;
}

/**
 * One consistent archive of an agent: the database through SQLite's online backup
 * (safe while the runtime writes; never a file copy of a live database), checked
 * with quick_check before it is archived, plus .env, settings.json and the clone's
 * commit. Nothing is written under the final name unless all of it succeeded.
 */
export async function backupAgent(paths: AgentPaths, options: BackupOptions): Promise<BackupResult> {
  const createdAt = (options.now ?? (() => new Date()))();
  const dir = join(resolve(options.outDir), paths.agent.id);
  await ensureDir(dir);
  const destination = join(dir, archiveName(paths.agent.id, createdAt));
  const snapshot = join(dir, `.${paths.agent.id}.${process.pid}.${randomBytes(4).toString('hex')}.db`);
  try {
    await snapshotDatabase(paths.db, snapshot);
    const version = checkSnapshot(snapshot, paths);
    const sources: ArchiveSource[] = [{ name: 'animus.db', path: snapshot, mode: (await fileMode(paths.db)) ?? 0o600 }];
    for (const [name, path] of [['.env', paths.env], ['settings.json', paths.settings]] as const) {
      const data = await readOptional(path);
      if (data) sources.push({ name, data, mode: (await fileMode(path)) ?? 0o600 });
    }
    const clone = await cloneDir(paths);
    const base: Omit<Manifest, 'files' | 'bodyBytes' | 'encrypted' | 'encryption'> = {
      format: FORMAT,
      formatVersion: FORMAT_VERSION,
      agentId: paths.agent.id,
      createdAt: createdAt.toISOString(),
      animusVersion: animusVersion(),
      schemaVersion: version,
      clone: {
        commit: (clone && (await readHeadCommit(clone))) ?? null,
        origin: (clone && (await readRemoteUrl(clone))) ?? null,
        dir: clone ? clone.slice(paths.dir.length + 1) : null,
      },
    };
    const manifest = await writeArchive(destination, base, sources, options.key);
    const pruned = options.keep === undefined ? [] : await pruneArchives(dir, paths.agent.id, options.keep);
    return {
      id: paths.agent.id,
      archive: destination,
      bytes: (await stat(destination)).size,
      createdAt: manifest.createdAt,
      encrypted: manifest.encrypted,
      schemaVersion: manifest.schemaVersion,
      commit: manifest.clone.commit,
      files: manifest.files.map(({ name, size, sha256 }) => ({ name, size, sha256 })),
      pruned,
    };
  } catch (error) {
    if (error instanceof AnimusError) throw error;
    throw new AnimusError('EIO', `backup of ${paths.agent.id} failed: ${describeError(error)}`, { cause: error });
  } finally {
    // Opening the snapshot (WAL mode, like its source) leaves its -wal and -shm beside it.
    await Promise.all(['', '-wal', '-shm'].map((suffix) => rm(`${snapshot}${suffix}`, { force: true })));
  }
}

/** A database that fails quick_check is not archived: every archive must restore. */
function checkSnapshot(snapshot: string, paths: AgentPaths): number {
  const db = openDatabase(snapshot, { readonly: true });
  try {
    const check = db.pragma('quick_check', { simple: true }) as string;
    if (check !== 'ok') {
      throw new AnimusError('EBADDB', `${paths.db} fails quick_check (${check}): not backed up; restore it from an older archive with \`animus restore ${paths.agent.id} --from <archive>\``);
    }
    return schemaVersion(db);
  } finally {
    db.close();
  }
}

async function readOptional(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Deletes all but the newest `keep` archives of one agent in its folder; names sort by time. */
export async function pruneArchives(dir: string, agentId: string, keep: number): Promise<string[]> {
  const names = (await readdir(dir)).filter((name) => isArchiveName(name, agentId)).sort();
  const doomed = names.slice(0, Math.max(0, names.length - keep));
  await Promise.all(doomed.map((name) => rm(join(dir, name), { force: true })));
  return doomed.map((name) => join(dir, name));
}

let version: string | undefined;
function animusVersion(): string {
  version ??= packageManifest().version;
  return version;
}
