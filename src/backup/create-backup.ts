import Database from 'better-sqlite3';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { threadId } from 'node:worker_threads';
import { readAgentFile, readAgentText } from '../core/agent-fs.js';
import { AnimusError, describeError, isAnimusError } from '../core/errors.js';
import { agentDbLocationFrom, dbPathOf } from '../instances/db-path.js';
import { packageManifest } from '../core/package-root.js';
import { readCloneCommit, readRemoteUrl } from '../git/refs.js';
import { homeLayout, LEGACY_CLONE_DIR, type AgentPaths } from '../home/layout.js';
import { databaseError } from '../store/database.js';
import { snapshotDatabase } from '../store/snapshot.js';
import { agentStamp, archiveName, AUDIT_ENTRY, FORMAT, FORMAT_VERSION, isArchiveName, type BrocaTable, type Manifest } from './archive-format.js';
import { removeDebris } from './debris.js';
import { checkAgentConfig, countBrocaRows } from './archive-checks.js';
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
  /** Files archived as they are although animus cannot use them yet (a settings.json of the guide's form). */
  notes: string[];
}

export function defaultBackupDir(home: string): string {
  return homeLayout(home).backupsDir;
}

/**
 * One consistent archive of an agent: the database as one image read in a single
 * read transaction (safe while the runtime writes; never a file copy of a live
 * database), checked with integrity_check before it is archived, plus .env,
 * settings.json and the clone's commit. Nothing is written under the final name
 * unless all of it succeeded.
 */
export async function backupAgent(paths: AgentPaths, options: BackupOptions): Promise<BackupResult> {
  const createdAt = (options.now ?? (() => new Date()))();
  const dir = join(resolve(options.outDir), paths.agent.id);
  ensurePrivateDir(dir);
  removeDebris(dir);
  const destination = join(dir, archiveName(paths.agent.id, createdAt));
  try {
    // What restore will check, checked first: an archive made here is one restore takes.
    // .env and settings.json are read without following a link out of the folder.
    const env = readAgentText(paths.dir, '.env');
    const settings = readAgentText(paths.dir, 'settings.json');
    const notes = checkAgentConfig(paths.agent.id, { env, settings }, '');
    // Where the runtime finds the database, from the .env just read (not read a second time).
    const dbPath = agentDbLocationFrom(paths, dbPathOf(env, paths.env)).path;
    const data = await readImage(dbPath, dir);
    const { version, rows } = checkImage(data, dbPath, paths);
    // The agent's stamp in the image's application_id: restore tells this agent's database from another's.
    const applicationId = agentStamp(paths.agent.id);
    data.writeUInt32BE(applicationId, 68);
    // Restore writes every file 0600, whatever it was: that is the mode recorded.
    const sources: ArchiveSource[] = [{ name: 'animus.db', data, mode: 0o600 }];
    if (env !== undefined) sources.push({ name: '.env', data: Buffer.from(env, 'utf8'), mode: 0o600 });
    if (settings !== undefined) sources.push({ name: 'settings.json', data: Buffer.from(settings, 'utf8'), mode: 0o600 });
    const audit = readAuditTrail(paths, notes);
    if (audit !== undefined) sources.push({ name: AUDIT_ENTRY, data: audit, mode: 0o600 });
    const clone = [paths.clone, join(paths.dir, LEGACY_CLONE_DIR)].find((d) => existsSync(join(d, '.git')));
    const base: Omit<Manifest, 'files' | 'bodyBytes' | 'encrypted' | 'encryption'> = {
      format: FORMAT,
      formatVersion: FORMAT_VERSION,
      agentId: paths.agent.id,
      createdAt: createdAt.toISOString(),
      animusVersion: animusVersion(),
      schemaVersion: version,
      clone: {
        commit: (clone && readCloneCommit(clone)) ?? null,
        origin: (clone && readRemoteUrl(clone)) ?? null,
        dir: clone ? clone.slice(paths.dir.length + 1) : null,
      },
      database: { rows, applicationId },
    };
    const { manifest, bytes } = await writeArchive(destination, base, sources, options.key);
    const pruned = options.keep === undefined ? [] : await pruneArchives(dir, paths.agent.id, options.keep);
    return {
      id: paths.agent.id,
      archive: destination,
      bytes,
      createdAt: manifest.createdAt,
      encrypted: manifest.encrypted,
      schemaVersion: manifest.schemaVersion,
      commit: manifest.clone.commit,
      files: manifest.files.map(({ name, size, sha256 }) => ({ name, size, sha256 })),
      pruned,
      notes,
    };
  } catch (error) {
    if (error instanceof AnimusError) throw error;
    throw new AnimusError('EIO', `backup of ${paths.agent.id} failed: ${describeError(error)}`, { cause: error });
  }
}

/**
 * The agent's audit trail, read without following a link (nor a second hard link: another
 * agent's file under this name). It is a record, not what makes the agent run: one that is
 * a link, a FIFO or unreadable is left out with a note, and the database is still saved.
 */
function readAuditTrail(paths: AgentPaths, notes: string[]): Buffer | undefined {
  try {
    return readAgentFile(paths.dir, AUDIT_ENTRY, { singleLink: true });
  } catch (error) {
    if (!isAnimusError(error)) throw error;
    notes.push(`${AUDIT_ENTRY} not archived: ${error.message}`);
    return undefined;
  }
}

/**
 * The archive folder, checked once before any agent is backed up: made if missing
 * (0700), and proven to take a new folder, so `--out /proc` or a read-only mount
 * fails at once in one line instead of once per agent.
 */
export function prepareBackupRoot(outDir: string): void {
  const root = resolve(outDir);
  let info;
  try {
    info = statSync(root, { throwIfNoEntry: false });
  } catch (error) {
    throw new AnimusError('EIO', `cannot use ${root} for backups (${(error as NodeJS.ErrnoException).code ?? 'error'}): pass --out with a folder you can write`, { cause: error });
  }
  if (!info) ensurePrivateDir(root);
  else if (!info.isDirectory()) throw new AnimusError('EIO', `cannot use ${root} for backups (not a folder): pass --out with a folder you can write`);
  const probe = join(root, `.probe.${process.pid}.${threadId}`);
  try {
    mkdirSync(probe, { mode: 0o700 });
    rmSync(probe, { recursive: true, force: true });
  } catch (error) {
    throw new AnimusError('EIO', `cannot use ${root} for backups (${(error as NodeJS.ErrnoException).code ?? 'error'}): pass --out with a folder you can write`, { cause: error });
  }
}

/**
 * mkdir -p at 0700; an existing folder is only stat'ed (a repeated backup --all touches
 * nothing). Made one level at a time from the nearest existing folder: Node's recursive
 * mkdir spins for ever on a path it cannot create under /proc.
 */
export function ensurePrivateDir(dir: string): void {
  const refuse = (code: string, cause?: unknown) =>
    new AnimusError('EIO', `cannot use ${dir} for backups (${code}): pass --out with a folder you can write`, { cause });
  try {
    const info = statSync(dir, { throwIfNoEntry: false });
    if (info?.isDirectory() && (info.mode & 0o777) === 0o700) return;
    if (info && !info.isDirectory()) throw refuse('not a folder');
    const missing: string[] = [];
    for (let current = dir; !statSync(current, { throwIfNoEntry: false }); current = dirname(current)) missing.unshift(current);
    if (missing.length > 0 && !statSync(dirname(missing[0]!)).isDirectory()) throw refuse('ENOTDIR');
    for (const part of missing) mkdirSync(part, { mode: 0o700 });
    chmodSync(dir, 0o700);
  } catch (error) {
    if (error instanceof AnimusError) throw error;
    throw refuse((error as NodeJS.ErrnoException).code ?? 'error', error);
  }
}

/**
 * The live database as one consistent image, in memory. sqlite3_serialize, on an
 * on-disk database, runs one read transaction and reads every page through the pager
 * (WAL frames included), so the image is the database as of one commit even while the
 * runtime writes, and never a file copy. Nothing is written to the database or beside
 * it: no scratch file to create, fsync, read back and remove.
 *
 * One weakness: a page the disk fails to return comes out of serialize as zeros, not
 * as an error, and integrity_check does not read every byte (an overflow page's payload,
 * a free page). A page of zeros is rare in a real database, so an image with one is
 * taken again through SQLite's backup API, which reports a read error instead, into
 * a hidden file beside the archives (`scratchDir`), removed at once.
 */
export async function readImage(path: string, scratchDir: string, serialize: (path: string) => Buffer = serializeDatabase): Promise<Buffer> {
  const image = serialize(path);
  if (!hasZeroPage(image)) return image;
  const scratch = join(scratchDir, `.snapshot-${process.pid}-${threadId}-${basename(path)}`);
  try {
    await snapshotDatabase(path, scratch);
    return readFileSync(scratch);
  } finally {
    await rm(scratch, { force: true });
  }
}

/** Whether any page of a database image is all zeros (the page size is in the header, bytes 16-17). */
export function hasZeroPage(image: Buffer): boolean {
  if (image.length < 100) return false;
  const size = image.readUInt16BE(16) === 1 ? 65536 : image.readUInt16BE(16);
  if (size < 512 || image.length % size !== 0) return false;
  const zeros = Buffer.alloc(size);
  for (let offset = 0; offset < image.length; offset += size) {
    if (image.compare(zeros, 0, size, offset, offset + size) === 0) return true;
  }
  return false;
}

function serializeDatabase(path: string): Buffer {
  const db = openSource(path);
  try {
    return db.serialize();
  } catch (error) {
    // sqlite3_serialize reports any failure as no image, which better-sqlite3 calls
    // "Out of memory": the statement it runs first, run here, names what is wrong
    // (a file that is not SQLite, a database locked for longer than the timeout).
    try {
      db.pragma('page_count');
    } catch (cause) {
      throw databaseError(path, cause);
    }
    // It reads now: the failure was passing (a lock released since) or really memory.
    throw new AnimusError('EIO', `cannot read ${path}: SQLite gave no image of it (out of memory, or locked until a moment ago): not backed up; try again`, { cause: error });
  } finally {
    db.close();
  }
}

/**
 * The live database, read-only: opened directly (the busy timeout as a constructor
 * option) rather than through openDatabase, whose extra statements cost a thousand
 * round trips in `backup --all`. Nothing is written to it.
 */
function openSource(path: string): Database.Database {
  if (!existsSync(path)) throw new AnimusError('ENOTFOUND', `database ${path} does not exist: nothing to back up`);
  try {
    return new Database(path, { readonly: true, fileMustExist: true, timeout: 5000 });
  } catch (error) {
    throw new AnimusError('EBADDB', `cannot open ${path} (${describeError(error)}): not backed up`, { cause: error });
  }
}

/**
 * A database that fails integrity_check is not archived: every archive must restore, and
 * restore checks the same.
 * The image itself is checked, in memory. An in-memory database cannot be in WAL
 * mode, so the header's WAL flag (bytes 18-19) is cleared while better-sqlite3 copies
 * the image into SQLite and set back at once: no copy of our own, and the archived
 * bytes stay as SQLite read them.
 */
function checkImage(image: Buffer, dbPath: string, paths: AgentPaths): { version: number; rows: Record<BrocaTable, number> } {
  if (image.length === 0) throw new AnimusError('EBADDB', `${dbPath} is empty (0 bytes): not backed up; restore it from an older archive with \`animus restore ${paths.agent.id} --from <archive>\``);
  const wal = image.length >= 20 && image[18] === 2 && image[19] === 2;
  let db: Database.Database;
  try {
    if (wal) image[18] = image[19] = 1;
    db = new Database(image);
  } catch (error) {
    throw new AnimusError('EBADDB', `${dbPath} cannot be read (${describeError(error)}): not backed up; restore it from an older archive`, { cause: error });
  } finally {
    if (wal) image[18] = image[19] = 2;
  }
  try {
    // The full check, as verify and restore make it: quick_check passes an index that no longer matches its table.
    const problems = (db.pragma('integrity_check') as Array<{ integrity_check: string }>).map((r) => r.integrity_check).filter((r) => r !== 'ok');
    if (problems.length > 0) {
      throw new AnimusError('EBADDB', `${dbPath} fails integrity_check (${problems.slice(0, 3).join('; ')}): not backed up; restore it from an older archive with \`animus restore ${paths.agent.id} --from <archive>\``);
    }
    let rows: Record<BrocaTable, number>;
    try {
      rows = countBrocaRows(db, dbPath);
    } catch (error) {
      throw new AnimusError('EBADDB', `${describeError(error)}: not backed up`, { cause: error });
    }
    // user_version lives in the header (offset 60): no statement needed.
    return { version: image.length >= 64 ? image.readInt32BE(60) : 0, rows };
  } catch (error) {
    if (error instanceof AnimusError) throw error;
    throw new AnimusError('EBADDB', `${dbPath} fails integrity_check (${describeError(error)}): not backed up; restore it from an older archive`, { cause: error });
  } finally {
    db.close();
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
