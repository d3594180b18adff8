import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { AnimusError, describeError } from '../core/errors.js';
import { DIR_MODE, ensureDir } from '../core/fs.js';
import { removeAbandonedStaging } from '../home/init.js';
import { homeLayout } from '../home/layout.js';
import { openDatabase } from '../store/database.js';
import { agentStamp, BROCA_TABLES, type BrocaTable, type Manifest } from './archive-format.js';
import { checkAgentConfig, countBrocaRows } from './archive-checks.js';
import { extractArchive, type Extracted } from './read-archive.js';

export interface VerifyResult {
  archive: string;
  ok: true;
  agentId: string;
  createdAt: string;
  animusVersion: string;
  encrypted: boolean;
  schemaVersion: number;
  commit: string | null;
  origin: string | null;
  files: Array<{ name: string; size: number; sha256: string }>;
  rows: Record<BrocaTable, number> | null;
  integrityCheck: 'ok';
  /** Restorable, with these remarks (an older format; a settings.json kept as it is). */
  notes: string[];
}

/**
 * Everything restore relies on, proven on extracted copies in `workDir`: the manifest's
 * checksum, each file's (and the GCM tag), SQLite's full integrity_check, Broca's four
 * tables with the row counts the manifest records, the agent's stamp in the database,
 * and a .env and settings.json that name no other agent (archive-checks.ts, the same
 * checks `backup` made before writing it).
 */
export async function proveArchive(path: string, workDir: string, passphrase: string | undefined): Promise<Extracted> {
  const extracted = await extractArchive(path, workDir, { passphrase });
  const { manifest, files, notes } = extracted;
  const dbFile = files['animus.db']!;
  if ((await stat(dbFile)).size === 0) throw new AnimusError('EBADDB', `the database in ${path} is empty (0 bytes): use another archive`);
  const db = openDatabase(dbFile, { readonly: true });
  try {
    const rows = db.pragma('integrity_check') as Array<{ integrity_check: string }>;
    const problems = rows.map((r) => r.integrity_check).filter((r) => r !== 'ok');
    if (problems.length > 0) {
      throw new AnimusError('EBADDB', `the database in ${path} fails integrity_check (${problems.slice(0, 3).join('; ')}): use another archive`);
    }
    const counts = countBrocaRows(db, `the database in ${path}`);
    const recorded = manifest.database;
    if (recorded) {
      const stamp = db.pragma('application_id', { simple: true }) as number;
      if (stamp !== recorded.applicationId || stamp !== agentStamp(manifest.agentId)) {
        throw new AnimusError('EBADARCHIVE', `the database in ${path} is not ${manifest.agentId}'s (its agent stamp differs: another agent's database, relabelled?): use an archive of ${manifest.agentId}`);
      }
      const wrong = BROCA_TABLES.filter((table) => counts[table] !== recorded.rows[table]);
      if (wrong.length > 0) {
        const table = wrong[0]!;
        throw new AnimusError('EBADARCHIVE', `the database in ${path} has ${counts[table]} rows in ${table} where its manifest records ${recorded.rows[table]}: the archive is inconsistent; use another`);
      }
    }
  } catch (error) {
    if (error instanceof AnimusError) throw error;
    throw new AnimusError('EBADDB', `the database in ${path} cannot be read: ${describeError(error)}; use another archive`, { cause: error });
  } finally {
    db.close();
  }
  const text = async (name: '.env' | 'settings.json') => (files[name] ? await readFile(files[name]!, 'utf8') : undefined);
  notes.push(...checkAgentConfig(manifest.agentId, { env: await text('.env'), settings: await text('settings.json') }, ` in ${path}`));
  return extracted;
}

/**
 * `animus backup verify`: proves the archive in a private folder (0700) inside the
 * home's staging area, never the shared /tmp (the database holds users' messages),
 * then removes it. A killed verify's folder is removed by the next verify, restore
 * or `animus init`.
 */
export async function verifyArchive(path: string, passphrase: string | undefined, home: string): Promise<VerifyResult> {
  const work = await makeWorkDir(home, 'verify');
  try {
    const { manifest, notes } = await proveArchive(path, work, passphrase);
    return { ...describeVerified(path, manifest), notes };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** A private scratch folder `<label>.<pid>.<random>` in the home's staging area, after removing those of dead processes. */
export async function makeWorkDir(home: string, label: string): Promise<string> {
  const layout = homeLayout(home);
  await ensureDir(layout.stagingDir, DIR_MODE);
  await removeAbandonedStaging(layout);
  const work = await mkdtemp(join(layout.stagingDir, `${label}.${process.pid}.`));
  await chmod(work, DIR_MODE);
  return work;
}

export function describeVerified(path: string, manifest: Manifest): Omit<VerifyResult, 'notes'> {
  return {
    archive: path,
    ok: true,
    agentId: manifest.agentId,
    createdAt: manifest.createdAt,
    animusVersion: manifest.animusVersion,
    encrypted: manifest.encrypted,
    schemaVersion: manifest.schemaVersion,
    commit: manifest.clone.commit,
    origin: manifest.clone.origin,
    files: manifest.files.map(({ name, size, sha256 }) => ({ name, size, sha256 })),
    rows: manifest.database?.rows ?? null,
    integrityCheck: 'ok',
  };
}
