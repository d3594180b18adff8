import { AnimusError } from '../core/errors.js';

/**
 * The backup archive, one file per agent per backup, `<agent-id>_<UTC stamp>.animus-backup`:
 *
 *   offset 0    "ANIMUSBK"                      8 bytes, magic
 *   offset 8    header length H                 uint32, big-endian
 *   offset 12   header (the manifest)           H bytes of UTF-8 JSON, always in clear
 *   offset 12+H body                            the files, concatenated in manifest order
 *   (encrypted) GCM tag                         last 16 bytes of the file
 *
 * The manifest names the agent, the time, the animus and schema versions, the clone's
 * commit (the clone itself is not archived: it is reproducible from its origin), and
 * each file's name, size, mode and sha256. Plain archives are checked file by file
 * against those sums. Encrypted ones (`encrypted: true`) hold the body as AES-256-GCM
 * ciphertext under a key derived with scrypt from a passphrase; the magic and the
 * whole header are the cipher's additional data, so changing any byte of the file,
 * manifest included, fails authentication. `encryption.keyCheck` tells a wrong
 * passphrase from a tampered archive without decrypting anything.
 */
export const MAGIC = Buffer.from('ANIMUSBK', 'latin1');
export const PREFIX_BYTES = MAGIC.length + 4;
export const FORMAT = 'animus-backup';
export const FORMAT_VERSION = 1;
export const ARCHIVE_EXT = '.animus-backup';
export const TAG_BYTES = 16;
/** A header larger than this is not one of ours (they are a few hundred bytes). */
const MAX_HEADER_BYTES = 1024 * 1024;

/** The files an archive may hold, restored to the same names in the agent folder. */
export const ARCHIVED_FILES = ['animus.db', '.env', 'settings.json'] as const;
export type ArchivedFile = (typeof ARCHIVED_FILES)[number];

export interface ArchiveFileEntry {
  name: ArchivedFile;
  size: number;
  sha256: string;
  mode: number;
}

export interface EncryptionInfo {
  cipher: 'aes-256-gcm';
  kdf: 'scrypt';
  /** scrypt cost parameters. */
  N: number;
  r: number;
  p: number;
  salt: string;
  iv: string;
  /** sha256 of the second half of the derived key, hex: checks the passphrase. */
  keyCheck: string;
}

export interface Manifest {
  format: typeof FORMAT;
  formatVersion: number;
  agentId: string;
  createdAt: string;
  animusVersion: string;
  schemaVersion: number;
  clone: { commit: string | null; origin: string | null; dir: string | null };
  encrypted: boolean;
  encryption?: EncryptionInfo;
  files: ArchiveFileEntry[];
  /** Bytes of body (without the GCM tag). */
  bodyBytes: number;
}

export function encodePrefix(manifest: Manifest): Buffer {
  const header = Buffer.from(JSON.stringify(manifest), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(header.length);
  return Buffer.concat([MAGIC, length, header]);
}

/** Parses the start of a file; throws EBADARCHIVE for anything that is not an animus archive. */
export function decodePrefix(data: Buffer, source: string): { manifest: Manifest; prefixBytes: number } {
  const notOurs = () => new AnimusError('EBADARCHIVE', `${source} is not an animus backup archive: pass a file made by \`animus backup\``);
  if (data.length < PREFIX_BYTES || !data.subarray(0, MAGIC.length).equals(MAGIC)) throw notOurs();
  const length = data.readUInt32BE(MAGIC.length);
  if (length === 0 || length > MAX_HEADER_BYTES) throw notOurs();
  if (data.length < PREFIX_BYTES + length) throw new AnimusError('EBADARCHIVE', `${source} is truncated (its manifest is cut off): use another archive`);
  let raw: unknown;
  try {
    raw = JSON.parse(data.toString('utf8', PREFIX_BYTES, PREFIX_BYTES + length));
  } catch {
    throw new AnimusError('EBADARCHIVE', `${source} has an unreadable manifest: the archive is damaged; use another`);
  }
  return { manifest: validateManifest(raw, source), prefixBytes: PREFIX_BYTES + length };
}

function validateManifest(raw: unknown, source: string): Manifest {
  const bad = (what: string) => new AnimusError('EBADARCHIVE', `${source} has an invalid manifest (${what}): the archive is damaged; use another`);
  if (typeof raw !== 'object' || raw === null) throw bad('not an object');
  const m = raw as Partial<Manifest>;
  if (m.format !== FORMAT) throw bad('format');
  if (m.formatVersion !== FORMAT_VERSION) {
    throw new AnimusError('EBADARCHIVE', `${source} is archive format ${String(m.formatVersion)}, this animus reads ${FORMAT_VERSION}: use a matching animus version`);
  }
  if (typeof m.agentId !== 'string' || typeof m.createdAt !== 'string' || typeof m.schemaVersion !== 'number') throw bad('agent, time or schema version');
  if (!Array.isArray(m.files) || typeof m.bodyBytes !== 'number') throw bad('files');
  let total = 0;
  for (const file of m.files) {
    if (!ARCHIVED_FILES.includes(file?.name) || !Number.isSafeInteger(file.size) || file.size < 0 || !/^[0-9a-f]{64}$/.test(file.sha256)) throw bad('file entry');
    total += file.size;
  }
  if (total !== m.bodyBytes) throw bad('sizes');
  if (!m.files.some((f) => f.name === 'animus.db')) throw bad('no database');
  if (m.encrypted) {
    const e = m.encryption;
    if (!e || e.cipher !== 'aes-256-gcm' || e.kdf !== 'scrypt' || typeof e.salt !== 'string' || typeof e.iv !== 'string' || typeof e.keyCheck !== 'string') throw bad('encryption');
  }
  return m as Manifest;
}

/** `agent-<uuid>_20261121T233419123Z.animus-backup`: sorts by time within an agent. */
export function archiveName(agentId: string, createdAt: Date): string {
  return `${agentId}_${createdAt.toISOString().replace(/[-:.]/g, '')}${ARCHIVE_EXT}`;
}

export function isArchiveName(name: string, agentId?: string): boolean {
  return name.endsWith(ARCHIVE_EXT) && (agentId === undefined ? name.startsWith('agent-') : name.startsWith(`${agentId}_`));
}
