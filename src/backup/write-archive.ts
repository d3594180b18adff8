import { createHash } from 'node:crypto';
import { closeSync, createReadStream, fchmodSync, fsync, openSync, renameSync, rmSync, writevSync } from 'node:fs';
import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import type { Cipher } from 'node:crypto';
import { encodePrefix, MAGIC, PARTIAL_EXT, TAG_BYTES, type ArchivedFile, type ArchiveFileEntry, type Manifest } from './archive-format.js';
import { encryptor, newIv, type ArchiveKey } from './cipher.js';

export interface ArchiveSource {
  name: ArchivedFile;
  /** A file to read, or the bytes themselves. */
  path?: string;
  data?: Buffer;
  mode: number;
}

export type ManifestBase = Omit<Manifest, 'files' | 'bodyBytes' | 'encrypted' | 'encryption'>;

/** Files up to this size are read once and kept in memory; larger ones are streamed twice (hash, then write). */
const IN_MEMORY_BYTES = 32 * 1024 * 1024;

export interface WrittenArchive {
  manifest: Manifest;
  /** Bytes of the archive: header, body and, when encrypted, the tag. */
  bytes: number;
}

/**
 * Writes an archive (see archive-format.ts) to `destination` through a temporary file
 * that is fsynced and renamed, mode 0600 from its first byte: a reader never sees a
 * partial archive and a crash leaves none behind under the final name.
 */
export async function writeArchive(destination: string, base: ManifestBase, sources: ArchiveSource[], key?: ArchiveKey): Promise<WrittenArchive> {
  const loaded = await Promise.all(sources.map(loadSource));
  const files: ArchiveFileEntry[] = loaded.map((s) => ({ name: s.name, size: s.size, sha256: s.sha256, mode: s.mode }));
  const iv = key ? newIv() : undefined;
  const manifest: Manifest = {
    ...base,
    encrypted: key !== undefined,
    ...(key && iv ? { encryption: { ...key.params, iv: iv.toString('base64') } } : {}),
    files,
    bodyBytes: files.reduce((sum, f) => sum + f.size, 0),
  };
  const prefix = encodePrefix(manifest);
  const cipher = key && iv ? encryptor(key.key, iv, prefix) : undefined;
  const written = { manifest, bytes: prefix.length + manifest.bodyBytes + (cipher ? TAG_BYTES : 0) };

  // The pid in the name tells the next backup whether its writer is still running (see removeDebris).
  const temp = `${destination}.${process.pid}${PARTIAL_EXT}`;
  if (loaded.every((source) => source.data)) {
    // The usual case (a database of a few MiB): synchronous calls, one vectored write,
    // and only the fsync handed to the thread pool, where a thousand of them overlap.
    const body = loaded.map((source) => (cipher ? cipher.update(source.data!) : source.data!));
    const tail = cipher ? [cipher.final(), cipher.getAuthTag()] : [];
    const fd = openSync(temp, 'wx', 0o600);
    try {
      fchmodSync(fd, 0o600);
      writevSync(fd, [prefix, ...body, ...tail]);
      await new Promise<void>((resolve, reject) => fsync(fd, (error) => (error ? reject(error) : resolve())));
      closeSync(fd);
      renameSync(temp, destination);
    } catch (error) {
      try {
        closeSync(fd);
      } catch {
        // Already closed.
      }
      rmSync(temp, { force: true });
      throw error;
    }
    return written;
  }
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.chmod(0o600);
    await handle.write(prefix);
    for (const source of loaded) {
      const chunks = source.data ? [source.data] : createReadStream(source.path!, { highWaterMark: 1024 * 1024 });
      for await (const chunk of chunks) await writeChunk(handle, cipher, chunk as Buffer);
    }
    if (cipher) {
      const rest = cipher.final();
      if (rest.length > 0) await handle.write(rest);
      await handle.write(cipher.getAuthTag());
    }
    await handle.sync();
    await handle.close();
    await rename(temp, destination);
  } catch (error) {
    await handle.close().catch(() => {});
    await rm(temp, { force: true });
    throw error;
  }
  return written;
}

async function writeChunk(handle: Awaited<ReturnType<typeof open>>, cipher: Cipher | undefined, chunk: Buffer): Promise<void> {
  const out = cipher ? cipher.update(chunk) : chunk;
  if (out.length > 0) await handle.write(out);
}

async function loadSource(source: ArchiveSource): Promise<ArchiveSource & { size: number; sha256: string }> {
  if (source.data) return { ...source, size: source.data.length, sha256: sha256(source.data) };
  const size = (await stat(source.path!)).size;
  if (size <= IN_MEMORY_BYTES) {
    const data = await readFile(source.path!);
    return { ...source, data, size: data.length, sha256: sha256(data) };
  }
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(source.path!, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return { ...source, size, sha256: hash.digest('hex') };
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export { MAGIC };
