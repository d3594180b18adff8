import { createHash } from 'node:crypto';
import { lstatSync, readlinkSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { runGit } from './run.js';
import { parseGitConfig, readPlainFile, readHead, readText, resolveRef, symbolicRef } from './refs.js';

/**
 * A clone's state as `git status` and `git rev-list` would tell it, read from files
 * so that health over a thousand agents spawns no git in the usual case: the index
 * is parsed and each tracked file's stat compared with it (a file whose stat moved
 * is hashed as a blob before it is called modified), and the upstream commit is
 * read from the origin's refs. Git is spawned only for an agent whose upstream
 * differs from its HEAD, to count how far behind it is. File reads are synchronous:
 * for small files in the page cache that is several times cheaper than the
 * thread-pool round trip of fs/promises, and health does thousands of them.
 */
export interface CloneState {
  commit: string | undefined;
  /** Tracked files modified or deleted (untracked files do not count: they never block a fast-forward). */
  dirtyFiles: string[];
  /** undefined: could not tell (no upstream known). */
  upstream: string | undefined;
  /** 0 up to date; n behind; -1 behind by a count git could not give (upstream not fetched). */
  behind: number | undefined;
  ahead: number | undefined;
}

export interface IndexEntry {
  path: string;
  mtimeS: number;
  mtimeNs: number;
  size: number;
  mode: number;
  sha: string;
}

/**
 * What a clone's own .git files say, apart from the working tree: read once here, so
 * that health can keep it between runs for as long as those files do not change.
 */
export interface CloneFiles {
  commit: string | undefined;
  /** The ref HEAD points at (`refs/heads/main`); undefined when detached or unreadable. */
  headRef: string | undefined;
  upstream: UpstreamSource | undefined;
  /** The index; undefined when there is none or it cannot be parsed (then nothing counts as modified). */
  index: IndexEntry[] | undefined;
}

/** Where the upstream commit is read: a local origin repository (always current) or a remote-tracking ref. */
export interface UpstreamSource {
  localOrigin?: string;
  merge?: string;
  remote: string;
  /**
   * The branch's remote-tracking ref (`refs/remotes/origin/main`) and its commit, read with
   * the clone's other .git files: the upstream when there is no local origin to read (a
   * remote one, or one that is gone), kept with them instead of read at every look.
   */
  tracking?: { ref: string; commit?: string };
}

/** `headText`: HEAD as the caller already read it (so that it is read once, after the caller stat'ed it). */
export function readCloneFiles(clone: string, headText?: string): CloneFiles {
  const gitDir = join(clone, '.git');
  const head = headText ?? readText(join(gitDir, 'HEAD'));
  const headRef = /^ref: (.+)$/.exec(head?.trim() ?? '')?.[1];
  return { commit: readHead(gitDir, head), headRef, upstream: readUpstreamSource(clone, head), index: readIndex(clone) };
}

/** The clone's index; undefined when there is none or it cannot be parsed. */
export function readIndex(clone: string): IndexEntry[] | undefined {
  const data = readPlainFile(join(clone, '.git', 'index'));
  if (!data) return undefined;
  try {
    return parseIndex(data);
  } catch {
    return undefined;
  }
}

/**
 * The working tree compared with the index, and the upstream read now: what changes
 * without .git changing. `origins` memoizes what was read from local origin
 * repositories during one run: a thousand agents cloned from the home's runtime repo
 * share one answer.
 */
export async function cloneStateFrom(clone: string, files: CloneFiles, origins?: Map<string, string | undefined>): Promise<CloneState> {
  const { commit } = files;
  const dirtyFiles = modifiedEntries(clone, files.index ?? []);
  const upstream = files.upstream ? resolveUpstream(clone, files.upstream, origins) : undefined;
  let behind: number | undefined;
  let ahead: number | undefined;
  if (commit && upstream) {
    if (upstream === commit) {
      behind = 0;
      ahead = 0;
    } else {
      const counts = await countDivergence(clone, commit, upstream);
      behind = counts?.behind ?? -1;
      ahead = counts?.ahead;
    }
  }
  return { commit, dirtyFiles, upstream, behind, ahead };
}

/** Tracked files whose content differs from the index (modified, deleted, or type changed). */
export function findModifiedFiles(clone: string): string[] {
  return modifiedEntries(clone, readIndex(clone) ?? []);
}

function modifiedEntries(clone: string, index: IndexEntry[]): string[] {
  const modified: string[] = [];
  for (const entry of index) {
    if ((entry.mode & 0o170000) === 0o160000) continue; // submodule
    if (isModified(clone, entry)) modified.push(entry.path);
  }
  return modified.sort();
}

function isModified(clone: string, entry: IndexEntry): boolean {
  // Index paths are clean and relative: concatenation, as join's normalizing shows at a thousand clones.
  const path = `${clone}/${entry.path}`;
  const info = lstatSync(path, { throwIfNoEntry: false });
  if (!info) return true;
  const isLink = (entry.mode & 0o170000) === 0o120000;
  if (isLink !== info.isSymbolicLink() || (!isLink && !info.isFile())) return true;
  if (!isLink && (entry.mode & 0o100) !== (info.mode & 0o100)) return true;
  if (info.size !== entry.size) return true;
  // Node derives mtimeMs from seconds and nanoseconds with this same expression; should that ever
  // differ, the content is hashed below, which is slower but still right.
  if (info.mtimeMs === entry.mtimeS * 1000 + entry.mtimeNs / 1e6) return false;
  // The stat moved (a copy, a touch): the content decides, as git decides.
  const content = isLink ? Buffer.from(readlinkSync(path)) : readPlainFile(path);
  // Gone, or no longer a plain file, since the lstat above.
  if (!content) return true;
  const blob = createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
  return blob !== entry.sha;
}

/** Git's index format, versions 2 to 4 (see git's Documentation/gitformat-index.txt). */
export function parseIndex(data: Buffer): IndexEntry[] {
  if (data.length < 12 || data.toString('latin1', 0, 4) !== 'DIRC') throw new Error('not a git index');
  const version = data.readUInt32BE(4);
  if (version < 2 || version > 4) throw new Error(`git index version ${version}`);
  const count = data.readUInt32BE(8);
  const entries: IndexEntry[] = [];
  let offset = 12;
  let previous = '';
  for (let i = 0; i < count; i++) {
    const start = offset;
    const mtimeS = data.readUInt32BE(start + 8);
    const mtimeNs = data.readUInt32BE(start + 12);
    const mode = data.readUInt32BE(start + 24);
    const size = data.readUInt32BE(start + 36);
    const sha = data.toString('hex', start + 40, start + 60);
    const flags = data.readUInt16BE(start + 60);
    offset = start + 62;
    if (version >= 3 && flags & 0x4000) offset += 2;
    let path: string;
    if (version === 4) {
      let strip = 0;
      let byte: number;
      // Git's offset varint: each continuation adds one before shifting.
      byte = data[offset++]!;
      strip = byte & 0x7f;
      while (byte & 0x80) {
        byte = data[offset++]!;
        strip = ((strip + 1) << 7) | (byte & 0x7f);
      }
      const end = data.indexOf(0, offset);
      path = previous.slice(0, previous.length - strip) + data.toString('utf8', offset, end);
      offset = end + 1;
    } else {
      const end = data.indexOf(0, offset);
      path = data.toString('utf8', offset, end);
      // Entries are NUL-padded to a multiple of eight bytes.
      offset = start + ((offset - start + (end - offset) + 8) & ~7);
    }
    previous = path;
    // Stage > 0 is a merge in progress: that alone is a dirty tree.
    const stage = (flags >> 12) & 0x3;
    entries.push({ path, mtimeS, mtimeNs, size, mode, sha: stage === 0 ? sha : 'conflict' });
  }
  return entries;
}

/**
 * Where the clone's upstream commit lives: the branch's upstream as recorded in the
 * clone's config. A local origin (the home's runtime repo) is read directly, so it
 * is current; a remote one is as of the last fetch.
 */
function readUpstreamSource(clone: string, head: string | undefined): UpstreamSource | undefined {
  const config = readText(join(clone, '.git', 'config'));
  if (head === undefined || config === undefined) return undefined;
  const branch = /^ref: refs\/heads\/(.+)$/m.exec(head.trim())?.[1];
  const sections = parseGitConfig(config);
  const remote = (branch && sections.get(`branch "${branch}"`)?.get('remote')) || 'origin';
  const merge = branch ? sections.get(`branch "${branch}"`)?.get('merge') : undefined;
  const url = sections.get(`remote "${remote}"`)?.get('url');
  const localOrigin = url ? localRepoPath(url, clone) : undefined;
  const tracking = merge ? readTracking(join(clone, '.git'), remote, merge) : undefined;
  return { remote, ...(merge ? { merge } : {}), ...(localOrigin ? { localOrigin } : {}), ...(tracking ? { tracking } : {}) };
}

/** The remote-tracking ref of `merge` on `remote`, and its commit (loose, else packed). */
export function readTracking(gitDir: string, remote: string, merge: string): NonNullable<UpstreamSource['tracking']> {
  const ref = trackingRef(remote, merge);
  const commit = resolveRef(gitDir, ref);
  return { ref, ...(commit ? { commit } : {}) };
}

function trackingRef(remote: string, merge: string): string {
  return `refs/remotes/${remote}/${merge.replace(/^refs\/heads\//, '')}`;
}

function resolveUpstream(clone: string, source: UpstreamSource, origins?: Map<string, string | undefined>): string | undefined {
  const { localOrigin, merge, remote } = source;
  if (localOrigin) {
    const memoKey = `${localOrigin}\0${merge ?? ''}`;
    // A local origin that is gone (a home moved or never init-ed) is remembered as such, and
    // every clone of it then falls back to its remote-tracking ref, not only the first one asked.
    const commit = origins?.has(memoKey) ? origins.get(memoKey) : readLocalOrigin(localOrigin, merge);
    origins?.set(memoKey, commit);
    if (commit) return commit;
  }
  if (source.tracking) return source.tracking.commit;
  const gitDir = join(clone, '.git');
  const tracking = merge ? trackingRef(remote, merge) : symbolicRef(gitDir, `refs/remotes/${remote}/HEAD`);
  return tracking ? resolveRef(gitDir, tracking) : undefined;
}

function readLocalOrigin(localOrigin: string, merge: string | undefined): string | undefined {
  const originGit = readText(join(localOrigin, 'HEAD')) !== undefined ? localOrigin : join(localOrigin, '.git');
  const ref = merge ?? symbolicRef(originGit, 'HEAD');
  return ref ? resolveRef(originGit, ref) : undefined;
}

function localRepoPath(url: string, clone: string): string | undefined {
  if (url.startsWith('file://')) return decodeURIComponent(url.slice('file://'.length));
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url) || /^[^/]+@[^:]+:/.test(url)) return undefined;
  return isAbsolute(url) ? url : resolve(clone, url);
}

async function countDivergence(clone: string, commit: string, upstream: string): Promise<{ ahead: number; behind: number } | undefined> {
  try {
    const out = await runGit(['rev-list', '--left-right', '--count', `${commit}...${upstream}`], { cwd: clone });
    const [ahead, behind] = out.trim().split(/\s+/).map(Number);
    if (Number.isInteger(ahead) && Number.isInteger(behind)) return { ahead: ahead!, behind: behind! };
  } catch {
    // The upstream commit is not in the clone yet (not fetched): behind by an unknown count.
  }
  return undefined;
}
