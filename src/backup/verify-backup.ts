import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AnimusError, describeError } from '../core/errors.js';
import { parseEnv } from '../config/env-file.js';
import { parseSettingsJson } from '../config/settings.js';
import { openDatabase } from '../store/database.js';
import type { Manifest } from './archive-format.js';
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
  files: Array<{ name: string; size: number; sha256: string }>;
  integrityCheck: 'ok';
}

/**
 * Everything restore relies on, proven on extracted copies in `workDir`: checksums
 * (and the GCM tag), SQLite's full integrity_check, a schema this animus can read,
 * and .env and settings.json that parse and name the archive's agent.
 */
export async function proveArchive(path: string, workDir: string, passphrase: string | undefined): Promise<Extracted> {
  const extracted = await extractArchive(path, workDir, { passphrase });
  const { manifest, files } = extracted;
  const db = openDatabase(files['animus.db']!, { readonly: true });
  try {
    const rows = db.pragma('integrity_check') as Array<{ integrity_check: string }>;
    const problems = rows.map((r) => r.integrity_check).filter((r) => r !== 'ok');
    if (problems.length > 0) {
      throw new AnimusError('EBADDB', `the database in ${path} fails integrity_check (${problems.slice(0, 3).join('; ')}): use another archive`);
    }
  } catch (error) {
    if (error instanceof AnimusError) throw error;
    throw new AnimusError('EBADDB', `the database in ${path} cannot be read: ${describeError(error)}; use another archive`, { cause: error });
  } finally {
    db.close();
  }
  if (files['settings.json']) {
    const settings = parseSettingsJson(await readFile(files['settings.json'], 'utf8'), `settings.json in ${path}`);
    if (settings.agent.id !== manifest.agentId) {
      throw new AnimusError('EBADARCHIVE', `settings.json in ${path} names ${settings.agent.id}, not ${manifest.agentId}: the archive is inconsistent; use another`);
    }
  }
  if (files['.env']) {
    const env = parseEnv(await readFile(files['.env'], 'utf8'), `.env in ${path}`);
    if (env.AGENT_ID && env.AGENT_ID !== manifest.agentId) {
      throw new AnimusError('EBADARCHIVE', `.env in ${path} is for another agent than ${manifest.agentId}: the archive is inconsistent; use another`);
    }
  }
  return extracted;
}

/** `animus backup verify`: proves the archive in a private temporary folder, then removes it. */
export async function verifyArchive(path: string, passphrase: string | undefined): Promise<VerifyResult> {
  const work = await mkdtemp(join(tmpdir(), 'animus-verify-'));
  try {
    const { manifest } = await proveArchive(path, work, passphrase);
    return describeVerified(path, manifest);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export function describeVerified(path: string, manifest: Manifest): VerifyResult {
  return {
    archive: path,
    ok: true,
    agentId: manifest.agentId,
    createdAt: manifest.createdAt,
    animusVersion: manifest.animusVersion,
    encrypted: manifest.encrypted,
    schemaVersion: manifest.schemaVersion,
    commit: manifest.clone.commit,
    files: manifest.files.map(({ name, size, sha256 }) => ({ name, size, sha256 })),
    integrityCheck: 'ok',
  };
}
