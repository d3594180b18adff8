import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, type Stats } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import vm from 'node:vm';
import { DIR_MODE, SECRET_FILE_MODE, writeFileAtomicSync } from '../core/fs.js';
import { userCacheDir } from '../core/user-cache.js';

/**
 * A CommonJS bundle loaded as require would load it, but compiled with V8's code cache:
 * the bytecode of every function the last run of the same command compiled, kept in
 * the user's cache folder. Node 20 has no compile cache of its own (module.enableCompileCache
 * is Node 22), and parsing and compiling the CLI's code was some 60 ms of `animus health`
 * over a thousand agents (of 700); from the cache V8 only deserializes it.
 *
 * One cache file per command word (`health`, `status`, ...), because a cache holds only
 * what its run compiled: one shared file, made by whichever command ran first, would
 * leave every other command compiling as if there were none. The name carries the
 * bundle's identity and Node's version, so a new build or a new Node never meets an
 * old cache. The file is code this process runs: it is used only from a folder and a
 * file of this user's that nobody else can write, and only if its digest matches;
 * anything else, and the bundle is simply compiled.
 */
export interface LoadedBundle<T> {
  exports: T;
  /** Writes the cache when this run compiled the code (call it after the work, so it holds what the work compiled). */
  save(): void;
}

/** `ANIMUS_CODE_CACHE=off` turns the cache off. */
export function codeCacheEnabled(env: NodeJS.ProcessEnv): boolean {
  return env.ANIMUS_CODE_CACHE !== 'off';
}

/** The folder of the code caches. */
export function codeCacheDir(env: NodeJS.ProcessEnv): string {
  return join(userCacheDir(env), 'code');
}

/** Caches kept per folder: a few builds' worth of commands; the oldest go first. */
const KEEP_FILES = 96;
const DIGEST_BYTES = 32;

export function loadBundle<T>(file: string, key: string, env: NodeJS.ProcessEnv, options: { save: boolean }): LoadedBundle<T> {
  const require = createRequire(file);
  const dynamicImport = vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER;
  // Without the cache (turned off, or a Node 20 before the main context's loader could be named): plain require.
  if (!codeCacheEnabled(env) || !dynamicImport) return { exports: require(file) as T, save: () => {} };
  const dir = codeCacheDir(env);
  // One open for the bundle's text and its identity.
  const fd = openSync(file, 'r');
  let source: string;
  let identity: string;
  try {
    identity = bundleIdentity(fstatSync(fd));
    source = readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
  const path = join(dir, `${key}-${process.version}-${process.arch}-${identity}.v8`);
  const cached = readCache(dir, path);
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file,
    cachedData: cached,
    importModuleDynamically: dynamicImport,
  });
  const fromCache = cached !== undefined && !script.cachedDataRejected;
  const module = { exports: {} as T };
  (script.runInThisContext() as (...args: unknown[]) => void)(module.exports, require, module, file, dirname(file));
  return {
    exports: module.exports,
    save: () => {
      if (fromCache || !options.save) return;
      try {
        writeCache(dir, path, script.createCachedData());
      } catch {
        // Only speed is lost: the next run compiles again.
      }
    },
  };
}

/** The bundle file's identity (inode, size, mtime, ctime): a new build is a new file; an archive unpacked with fixed mtimes still has new ctimes. */
function bundleIdentity(info: Stats): string {
  return [info.ino, info.size, Math.floor(info.mtimeMs), Math.floor(info.ctimeMs)].map((n) => n.toString(36)).join('.');
}

/** The cached data, when the folder and the file are this user's alone and the digest holds. */
function readCache(dir: string, path: string): Buffer | undefined {
  let fd: number;
  try {
    // Any error (no folder, a file where a folder should be, no access): no cache.
    if (!isPrivate(lstatSync(dir))) return undefined;
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    if (!isPrivate(fstatSync(fd), 'file')) return undefined;
    const data = readFileSync(fd);
    const body = data.subarray(DIGEST_BYTES);
    return data.length > DIGEST_BYTES && digest(body).equals(data.subarray(0, DIGEST_BYTES)) ? body : undefined;
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

function writeCache(dir: string, path: string, data: Buffer): void {
  // Root under sudo with the user's HOME: no folder of root's inside the user's cache.
  if (!ownAncestor(dir)) return;
  mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  if (!isPrivate(lstatSync(dir))) return;
  writeFileAtomicSync(path, Buffer.concat([digest(data), data]), SECRET_FILE_MODE);
  prune(dir);
}

/** Keeps the newest KEEP_FILES caches, and drops what a killed write left. */
function prune(dir: string): void {
  const files = readdirSync(dir).flatMap((name) => {
    const info = lstatSync(join(dir, name), { throwIfNoEntry: false });
    return info?.isFile() ? [{ name, mtimeMs: info.mtimeMs }] : [];
  });
  const stale = Date.now() - 60_000;
  const temps = files.filter((f) => f.name.endsWith('.tmp') && f.mtimeMs < stale);
  const caches = files.filter((f) => f.name.endsWith('.v8')).sort((a, b) => b.mtimeMs - a.mtimeMs);
  for (const file of [...temps, ...caches.slice(KEEP_FILES)]) rmSync(join(dir, file.name), { force: true });
}

/** Whether the nearest folder of `dir` that exists (it, or the first parent that does) is this user's. */
function ownAncestor(dir: string): boolean {
  for (let at = dir; ; at = dirname(at)) {
    const info = lstatSync(at, { throwIfNoEntry: false }); // ENOTDIR and the like throw: the caller gives up
    if (info) return info.isDirectory() && info.uid === process.getuid?.();
    if (dirname(at) === at) return false;
  }
}

function isPrivate(info: Stats | undefined, kind: 'dir' | 'file' = 'dir'): boolean {
  if (!info || (kind === 'dir' ? !info.isDirectory() : !info.isFile())) return false;
  return info.uid === process.getuid?.() && (info.mode & 0o022) === 0;
}

function digest(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}
