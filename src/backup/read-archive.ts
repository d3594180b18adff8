import { createHash, type Hash } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { AnimusError } from '../core/errors.js';
import { decodePrefix, PARTIAL_EXT, TAG_BYTES, type ArchivedFile, type Manifest } from './archive-format.js';
import { decryptor, deriveKeyFor } from './cipher.js';

/**
 * Opens an archive the user named, for reading: non-blocking (a FIFO must not hang
 * the command) and checked to be a regular file (a folder, a device, a FIFO are
 * refused in one line); a backup's unfinished `.partial` file is never an archive.
 */
async function openArchive(path: string): Promise<FileHandle> {
  if (path.endsWith(PARTIAL_EXT)) {
    throw new AnimusError('EBADARCHIVE', `${path} is an unfinished archive left by an interrupted backup: use a finished one (\`animus backup list\`); the next backup removes it`);
  }
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new AnimusError('ENOTFOUND', `archive ${path} does not exist: run \`animus backup list\` to see the archives`);
    throw new AnimusError('EIO', `cannot read ${path} (${code ?? 'error'}): check its permissions`, { cause: error });
  }
  const info = await handle.stat();
  if (!info.isFile()) {
    await handle.close();
    const kind = info.isDirectory() ? 'a folder' : info.isFIFO() ? 'a FIFO' : info.isSocket() ? 'a socket' : 'a device';
    throw new AnimusError('EBADARCHIVE', `${path} is ${kind}, not an archive file: pass a file made by \`animus backup\``);
  }
  return handle;
}

export interface ManifestRead {
  manifest: Manifest;
  prefixBytes: number;
  fileBytes: number;
  /** What the reader should know (an older format without the newer checks). */
  notes: string[];
}

/** Reads only the manifest: listing a thousand archives reads a few KiB of each. */
export async function readManifest(path: string): Promise<ManifestRead> {
  const handle = await openArchive(path);
  try {
    return await readManifestFrom(handle, path);
  } finally {
    await handle.close();
  }
}

async function readManifestFrom(handle: FileHandle, path: string): Promise<ManifestRead> {
  const fileBytes = (await handle.stat()).size;
  const head = Buffer.alloc(Math.min(fileBytes, 64 * 1024 + 12));
  await handle.read(head, 0, head.length, 0);
  return { ...decodePrefix(head, path), fileBytes };
}

export interface ExtractOptions {
  passphrase?: string;
}

export interface Extracted {
  manifest: Manifest;
  /** Where each archived file was written (mode 0600), by name. */
  files: Partial<Record<ArchivedFile, string>>;
  notes: string[];
}

/**
 * Writes the archive's files into `destDir` and proves them: each file's sha256 and
 * size against the manifest and, when encrypted, the GCM tag over header and body.
 * Throws EBADARCHIVE on any mismatch; the caller discards `destDir` then, so nothing
 * unproven is ever used. The archive is opened once: what is proven is what was read.
 */
export async function extractArchive(path: string, destDir: string, options: ExtractOptions = {}): Promise<Extracted> {
  const handle = await openArchive(path);
  try {
    return await extractFrom(handle, path, destDir, options);
  } finally {
    await handle.close();
  }
}

async function extractFrom(handle: FileHandle, path: string, destDir: string, options: ExtractOptions): Promise<Extracted> {
  const { manifest, prefixBytes, fileBytes, notes } = await readManifestFrom(handle, path);
  const expected = prefixBytes + manifest.bodyBytes + (manifest.encrypted ? TAG_BYTES : 0);
  if (fileBytes !== expected) {
    throw new AnimusError('EBADARCHIVE', `${path} is ${fileBytes < expected ? 'truncated' : 'longer than its manifest says'} (${fileBytes} bytes, expected ${expected}): the archive is damaged or tampered with; use another`);
  }
  let decipher: ReturnType<typeof decryptor> | undefined;
  if (manifest.encrypted) {
    if (options.passphrase === undefined) {
      throw new AnimusError('EUSAGE', `${path} is encrypted: set ANIMUS_BACKUP_PASSPHRASE (or run on a terminal to be asked)`);
    }
    const key = await deriveKeyFor(manifest.encryption!, options.passphrase, path);
    const prefix = Buffer.alloc(prefixBytes);
    const tag = Buffer.alloc(TAG_BYTES);
    await handle.read(prefix, 0, prefixBytes, 0);
    await handle.read(tag, 0, TAG_BYTES, fileBytes - TAG_BYTES);
    decipher = decryptor(key, Buffer.from(manifest.encryption!.iv, 'base64'), prefix, tag);
  }

  const splitter = new FileSplitter(manifest, destDir);
  try {
    const chunk = Buffer.alloc(1024 * 1024);
    for (let offset = 0; offset < manifest.bodyBytes; ) {
      const { bytesRead } = await handle.read(chunk, 0, Math.min(chunk.length, manifest.bodyBytes - offset), prefixBytes + offset);
      if (bytesRead === 0) throw new AnimusError('EBADARCHIVE', `${path} ended while being read (changed meanwhile?): use another archive`);
      const part = chunk.subarray(0, bytesRead);
      await splitter.push(decipher ? decipher.update(part) : Buffer.from(part));
      offset += bytesRead;
    }
    if (decipher) {
      try {
        await splitter.push(decipher.final());
      } catch {
        throw new AnimusError('EBADARCHIVE', `${path} failed authentication: it was changed after it was made (tampered or damaged); use another archive`);
      }
    }
    await splitter.finish(path);
  } finally {
    await splitter.close();
  }
  return { manifest, files: splitter.written, notes };
}

/** Cuts the body stream into the manifest's files, hashing each as it goes. */
class FileSplitter {
  readonly written: Partial<Record<ArchivedFile, string>> = {};
  private index = 0;
  private remaining: number;
  private handle: Awaited<ReturnType<typeof open>> | undefined;
  private hash: Hash | undefined;
  private readonly sums: string[] = [];

  constructor(
    private readonly manifest: Manifest,
    private readonly destDir: string,
  ) {
    this.remaining = manifest.files[0]?.size ?? 0;
  }

  async push(data: Buffer): Promise<void> {
    let offset = 0;
    while (offset < data.length || (this.remaining === 0 && this.index < this.manifest.files.length && !this.handle)) {
      if (!this.handle) await this.openCurrent();
      const take = Math.min(this.remaining, data.length - offset);
      if (take > 0) {
        const part = data.subarray(offset, offset + take);
        this.hash!.update(part);
        await this.handle!.write(part);
        offset += take;
        this.remaining -= take;
      }
      if (this.remaining === 0) {
        await this.closeCurrent();
        if (this.index >= this.manifest.files.length) break;
      }
    }
  }

  async finish(source: string): Promise<void> {
    // Empty trailing files still get created and hashed.
    await this.push(Buffer.alloc(0));
    if (this.index < this.manifest.files.length) throw new AnimusError('EBADARCHIVE', `${source} ends before its last file: the archive is damaged; use another`);
    this.manifest.files.forEach((file, i) => {
      if (this.sums[i] !== file.sha256) {
        throw new AnimusError('EBADARCHIVE', `${source}: ${file.name} does not match its checksum (tampered or damaged); use another archive`);
      }
    });
  }

  async close(): Promise<void> {
    await this.handle?.close().catch(() => {});
    this.handle = undefined;
  }

  private async openCurrent(): Promise<void> {
    const file = this.manifest.files[this.index]!;
    // The name was checked at the manifest's edge (entryNameProblem): at most `logs/audit.log`.
    const target = join(this.destDir, file.name);
    if (dirname(target) !== this.destDir) await mkdir(dirname(target), { recursive: true, mode: 0o700 });
    this.handle = await open(target, 'wx', 0o600);
    this.hash = createHash('sha256');
    this.remaining = file.size;
    this.written[file.name] = target;
  }

  private async closeCurrent(): Promise<void> {
    await this.handle!.close();
    this.handle = undefined;
    this.sums.push(this.hash!.digest('hex'));
    this.index++;
    this.remaining = this.manifest.files[this.index]?.size ?? 0;
  }
}
