import { createHash } from 'node:crypto';
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
 *
 * Format 2 adds, for every archive, `manifestSha256`: the last member of the header,
 * the sha256 of the header's own bytes with that member left out, so a byte changed
 * anywhere in a plain archive's manifest (commit, origin, time, mode) is seen. It
 * proves the archive undamaged and unedited by hand, not that nobody forged it:
 * only an encrypted archive is authenticated. Format 2 also records the database's
 * four Broca tables and their row counts (`database.rows`) and stamps the archived
 * image's SQLite application_id with the agent (see agentStamp), so an empty
 * database, a table-less file or another agent's database relabelled is refused.
 * Format 1 archives (before this) are still read, with a note that they lack these.
 *
 * Format 3 adds the agent's audit trail, `logs/audit.log`, when it has one: the only
 * entry whose name has a folder in it. An older animus refuses a format 3 archive by
 * its version (one line naming it) rather than as a damaged one; format 2 archives,
 * which never hold it, are read as before.
 */
export const MAGIC = Buffer.from('ANIMUSBK', 'latin1');
export const PREFIX_BYTES = MAGIC.length + 4;
export const FORMAT = 'animus-backup';
export const FORMAT_VERSION = 3;
/** Older formats this animus still reads. */
const READABLE_VERSIONS = [1, 2, 3];
export const ARCHIVE_EXT = '.animus-backup';
/** An interrupted backup's temporary file: `<archive>.<pid>.partial`. Never an archive. */
export const PARTIAL_EXT = '.partial';
export const TAG_BYTES = 16;
/** A header larger than this is not one of ours (they are a few hundred bytes). */
const MAX_HEADER_BYTES = 64 * 1024;

/**
 * The files an archive may hold, restored to the same names in the agent folder (the
 * database where the restored .env's DB_PATH puts it). Only animus.db is required.
 */
export const ARCHIVED_FILES = ['animus.db', '.env', 'settings.json', 'logs/audit.log'] as const;
export type ArchivedFile = (typeof ARCHIVED_FILES)[number];
/** The agent's audit trail (src/audit), archived when it is a regular file of its own. */
export const AUDIT_ENTRY = 'logs/audit.log' satisfies ArchivedFile;

/**
 * Why an entry name is not one animus restores, or undefined when it is. The name is
 * a path inside the agent folder: relative, at most one folder deep, no `.` or `..`
 * part, and then one of ARCHIVED_FILES (a name the format allows but this animus does
 * not write is refused too: nothing unknown is ever written into an agent folder).
 */
export function entryNameProblem(name: string): string | undefined {
  const parts = name.split('/');
  if (name === '' || name.startsWith('/') || parts.some((part) => part === '' || part === '.' || part === '..')) return 'not a plain path inside the agent folder';
  if (parts.length > 2) return 'more than one folder deep';
  if (!ARCHIVED_FILES.includes(name as ArchivedFile)) return 'not a file animus archives';
  return undefined;
}

/** Broca's four tables: a database without all of them is not an agent's. */
export const BROCA_TABLES = ['letta_users', 'platform_profiles', 'messages', 'queue'] as const;
export type BrocaTable = (typeof BROCA_TABLES)[number];

/**
 * scrypt cost: what animus writes (cipher.ts) and the most an archive may ask for.
 * An archive's parameters are read before any passphrase is tried, so a crafted one
 * (N=2^20, r=16: seconds and gigabytes) is refused before it costs anything.
 */
export const SCRYPT_WRITTEN = { N: 2 ** 15, r: 8, p: 1 } as const;
const SCRYPT_MIN_N = 2 ** 14;

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

export interface DatabaseInfo {
  /** Rows of each Broca table in the archived image. */
  rows: Record<BrocaTable, number>;
  /** The image's SQLite application_id: agentStamp(agentId). */
  applicationId: number;
}

export interface Manifest {
  format: typeof FORMAT;
  formatVersion: number;
  agentId: string;
  createdAt: string;
  animusVersion: string;
  schemaVersion: number;
  clone: { commit: string | null; origin: string | null; dir: string | null };
  /** Format 2; absent in format 1. */
  database?: DatabaseInfo;
  encrypted: boolean;
  encryption?: EncryptionInfo;
  files: ArchiveFileEntry[];
  /** Bytes of body (without the GCM tag). */
  bodyBytes: number;
}

/**
 * The agent's stamp in an archived image's application_id (header bytes 68-71): the
 * first 31 bits of sha256(agent id), never 0 (SQLite's "none"). Broca never reads it.
 */
export function agentStamp(agentId: string): number {
  return (createHash('sha256').update(agentId).digest().readUInt32BE(0) >>> 1) || 1;
}

const CHECKSUM_KEY = 'manifestSha256';

export function encodePrefix(manifest: Manifest): Buffer {
  const json = JSON.stringify(manifest);
  const checksum = createHash('sha256').update(json, 'utf8').digest('hex');
  const header = Buffer.from(`${json.slice(0, -1)},"${CHECKSUM_KEY}":"${checksum}"}`, 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(header.length);
  return Buffer.concat([MAGIC, length, header]);
}

/** Parses the start of a file; throws EBADARCHIVE for anything that is not a whole, well-formed animus archive manifest. */
export function decodePrefix(data: Buffer, source: string): { manifest: Manifest; prefixBytes: number; notes: string[] } {
  const notOurs = () => new AnimusError('EBADARCHIVE', `${source} is not an animus backup archive: pass a file made by \`animus backup\``);
  if (data.length < PREFIX_BYTES || !data.subarray(0, MAGIC.length).equals(MAGIC)) throw notOurs();
  const length = data.readUInt32BE(MAGIC.length);
  if (length === 0 || length > MAX_HEADER_BYTES) throw notOurs();
  if (data.length < PREFIX_BYTES + length) throw new AnimusError('EBADARCHIVE', `${source} is truncated (its manifest is cut off): use another archive`);
  const text = data.toString('utf8', PREFIX_BYTES, PREFIX_BYTES + length);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new AnimusError('EBADARCHIVE', `${source} has an unreadable manifest: the archive is damaged; use another`);
  }
  const notes: string[] = [];
  const version = (raw as { formatVersion?: unknown } | null)?.formatVersion;
  if (version === 1) notes.push(`${source} is an archive of format 1 (older animus): its manifest has no checksum and no database record; restored on its file checksums alone`);
  else checkManifestSum(text, source);
  return { manifest: parseManifest(raw, source), prefixBytes: PREFIX_BYTES + length, notes };
}

function checkManifestSum(text: string, source: string): void {
  const match = new RegExp(`,"${CHECKSUM_KEY}":"([0-9a-f]{64})"\\}$`).exec(text);
  if (!match) throw new AnimusError('EBADARCHIVE', `${source} has a manifest without its checksum: the archive is damaged or was edited; use another`);
  const body = `${text.slice(0, match.index)}}`;
  if (createHash('sha256').update(body, 'utf8').digest('hex') !== match[1]) {
    throw new AnimusError('EBADARCHIVE', `${source}: its manifest does not match its checksum (changed after it was made: damaged or edited); use another archive`);
  }
}

/**
 * The one description of a manifest's types, checked at the edge: every string is
 * bounded and free of control characters (nothing read from an archive can reach a
 * terminal as an escape sequence), every number is a whole number in range.
 */
function parseManifest(raw: unknown, source: string): Manifest {
  const bad = (what: string) => new AnimusError('EBADARCHIVE', `${source} has an invalid manifest (${what}): the archive is damaged; use another`);
  if (!isObject(raw)) throw bad('not an object');
  if (raw.format !== FORMAT) throw bad('format');
  if (!READABLE_VERSIONS.includes(raw.formatVersion as number)) {
    throw new AnimusError('EBADARCHIVE', `${source} is archive format ${printable(String(raw.formatVersion)).slice(0, 20)}, this animus reads ${READABLE_VERSIONS.join(' and ')}: use a matching animus version`);
  }
  const text = (value: unknown, what: string, pattern?: RegExp, max = 200): string => {
    if (typeof value !== 'string' || value.length > max || /[\u0000-\u001f\u007f-\u009f]/.test(value) || (pattern && !pattern.test(value))) throw bad(what);
    return value;
  };
  const whole = (value: unknown, what: string, min: number, max: number): number => {
    if (!Number.isSafeInteger(value) || (value as number) < min || (value as number) > max) throw bad(what);
    return value as number;
  };
  const orNull = <T>(value: unknown, read: (v: unknown) => T): T | null => (value === null ? null : read(value));

  const agentId = text(raw.agentId, 'agent id', /^agent-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  const createdAt = text(raw.createdAt, 'time', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/);
  if (Number.isNaN(Date.parse(createdAt))) throw bad('time');
  const animusVersion = text(raw.animusVersion, 'animus version', /^[0-9A-Za-z.+-]{1,64}$/);
  const schemaVersion = whole(raw.schemaVersion, 'schema version', 0, 10_000);
  if (!isObject(raw.clone)) throw bad('clone');
  const clone = {
    commit: orNull(raw.clone.commit, (v) => text(v, 'clone commit', /^[0-9a-f]{40}([0-9a-f]{24})?$/)),
    origin: orNull(raw.clone.origin, (v) => text(v, 'clone origin', /^\S/, 4096)),
    dir: orNull(raw.clone.dir, (v) => text(v, 'clone folder', /^(runtime|broca)$/)),
  };
  if (typeof raw.encrypted !== 'boolean') throw bad('encrypted');

  if (!Array.isArray(raw.files) || raw.files.length === 0 || raw.files.length > ARCHIVED_FILES.length) throw bad('files');
  const files: ArchiveFileEntry[] = raw.files.map((file: unknown) => {
    if (!isObject(file) || typeof file.name !== 'string') throw bad('file entry');
    const problem = entryNameProblem(file.name);
    if (problem) throw bad(`file entry "${printable(file.name).slice(0, 80)}": ${problem}`);
    return {
      name: file.name as ArchivedFile,
      size: whole(file.size, 'file size', 0, Number.MAX_SAFE_INTEGER),
      sha256: text(file.sha256, 'file checksum', /^[0-9a-f]{64}$/),
      mode: whole(file.mode, 'file mode', 0, 0o777),
    };
  });
  if (new Set(files.map((f) => f.name)).size !== files.length) throw bad(`${files.find((f, i) => files.findIndex((g) => g.name === f.name) !== i)!.name} listed twice`);
  if (!files.some((f) => f.name === 'animus.db')) throw bad('no database');
  const bodyBytes = whole(raw.bodyBytes, 'sizes', 0, Number.MAX_SAFE_INTEGER);
  if (files.reduce((sum, f) => sum + f.size, 0) !== bodyBytes) throw bad('sizes');

  const manifest: Manifest = { format: FORMAT, formatVersion: raw.formatVersion as number, agentId, createdAt, animusVersion, schemaVersion, clone, encrypted: raw.encrypted, files, bodyBytes };
  if (raw.formatVersion !== 1) {
    if (!isObject(raw.database) || !isObject(raw.database.rows)) throw bad('database');
    const counts = raw.database.rows;
    const rows = Object.fromEntries(BROCA_TABLES.map((table) => [table, whole(counts[table], `rows of ${table}`, 0, Number.MAX_SAFE_INTEGER)])) as Record<BrocaTable, number>;
    manifest.database = { rows, applicationId: whole(raw.database.applicationId, 'database stamp', 1, 2 ** 31 - 1) };
  }
  if (raw.encrypted) manifest.encryption = parseEncryption(raw.encryption, bad);
  return manifest;
}

function parseEncryption(raw: unknown, bad: (what: string) => AnimusError): EncryptionInfo {
  if (!isObject(raw) || raw.cipher !== 'aes-256-gcm' || raw.kdf !== 'scrypt') throw bad('encryption');
  const { N, r, p } = raw;
  const power = Number.isSafeInteger(N) && (N as number) >= SCRYPT_MIN_N && (N as number) <= SCRYPT_WRITTEN.N && ((N as number) & ((N as number) - 1)) === 0;
  if (!power || !Number.isSafeInteger(r) || (r as number) < 1 || (r as number) > SCRYPT_WRITTEN.r || p !== SCRYPT_WRITTEN.p) {
    throw bad(`scrypt parameters beyond what animus writes (N up to 2^15, r up to 8, p 1)`);
  }
  const bytes = (value: unknown, length: number, what: string) => {
    if (typeof value !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(value) || Buffer.from(value, 'base64').length !== length) throw bad(what);
    return value;
  };
  if (typeof raw.keyCheck !== 'string' || !/^[0-9a-f]{64}$/.test(raw.keyCheck)) throw bad('key check');
  return { cipher: 'aes-256-gcm', kdf: 'scrypt', N: N as number, r: r as number, p: 1, salt: bytes(raw.salt, 16, 'salt'), iv: bytes(raw.iv, 12, 'iv'), keyCheck: raw.keyCheck };
}

function isObject(value: unknown): value is Record<string, any> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Text from an archive or a file name made safe for a terminal: control characters shown as `?`. */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

/** `agent-<uuid>_20261121T233419123Z.animus-backup`: sorts by time within an agent. */
export function archiveName(agentId: string, createdAt: Date): string {
  return `${agentId}_${createdAt.toISOString().replace(/[-:.]/g, '')}${ARCHIVE_EXT}`;
}

export function isArchiveName(name: string, agentId?: string): boolean {
  return name.endsWith(ARCHIVE_EXT) && (agentId === undefined ? name.startsWith('agent-') : name.startsWith(`${agentId}_`));
}
