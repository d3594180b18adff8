import { createHash } from 'node:crypto';
import { lstat, readFile, readlink } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { readHeadCommit, withGit } from '../git/repo.js';

/**
 * A clone's state as `git status` and `git rev-list` would tell it, read from files
 * so that health over a thousand agents spawns no git in the usual case: the index
 * is parsed and each tracked file's stat compared with it (a file whose stat moved
 * is hashed as a blob before it is called modified), and the upstream commit is
 * read from the origin's refs. Git is spawned only for an agent whose upstream
 * differs from its HEAD, to count how far behind it is.
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

interface IndexEntry {
  path: string;
  mtimeS: number;
  mtimeNs: number;
  size: number;
  mode: number;
  sha: string;
}

export async function readCloneState(clone: string): Promise<CloneState> {
  const commit = await readHeadCommit(clone);
  const [dirtyFiles, upstream] = await Promise.all([findModifiedFiles(clone), readUpstream(clone)]);
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
export async function findModifiedFiles(clone: string): Promise<string[]> {
  let index: IndexEntry[];
  try {
    index = parseIndex(await readFile(join(clone, '.git', 'index')));
  } catch {
    return [];
  }
  const modified: string[] = [];
  await Promise.all(
    index.map(async (entry) => {
      if ((entry.mode & 0o170000) === 0o160000) return; // submodule
      if (await isModified(clone, entry)) modified.push(entry.path);
    }),
  );
  return modified.sort();
}

async function isModified(clone: string, entry: IndexEntry): Promise<boolean> {
  const path = join(clone, entry.path);
  let info;
  try {
    info = await lstat(path, { bigint: true });
  } catch {
    return true;
  }
  const isLink = (entry.mode & 0o170000) === 0o120000;
  if (isLink !== info.isSymbolicLink() || (!isLink && !info.isFile())) return true;
  if (!isLink && (entry.mode & 0o100) !== (Number(info.mode) & 0o100)) return true;
  if (Number(info.size) !== entry.size) return true;
  const seconds = info.mtimeNs / 1_000_000_000n;
  if (Number(seconds) === entry.mtimeS && Number(info.mtimeNs % 1_000_000_000n) === entry.mtimeNs) return false;
  // The stat moved (a copy, a touch): the content decides, as git decides.
  const content = isLink ? Buffer.from(await readlink(path)) : await readFile(path);
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
 * The commit the clone would update to: the branch's upstream as recorded in the
 * clone's config. A local origin (the home's runtime repo) is read directly, so it
 * is current; a remote one is as of the last fetch.
 */
export async function readUpstream(clone: string): Promise<string | undefined> {
  const gitDir = join(clone, '.git');
  let head: string;
  let config: string;
  try {
    [head, config] = await Promise.all([readFile(join(gitDir, 'HEAD'), 'utf8'), readFile(join(gitDir, 'config'), 'utf8')]);
  } catch {
    return undefined;
  }
  const branch = /^ref: refs\/heads\/(.+)$/m.exec(head.trim())?.[1];
  const sections = parseGitConfig(config);
  const remote = (branch && sections.get(`branch "${branch}"`)?.get('remote')) || 'origin';
  const merge = branch ? sections.get(`branch "${branch}"`)?.get('merge') : undefined;
  const url = sections.get(`remote "${remote}"`)?.get('url');
  const localOrigin = url ? localRepoPath(url, clone) : undefined;
  if (localOrigin) {
    const originGit = await readFile(join(localOrigin, 'HEAD'), 'utf8').then(() => localOrigin, () => join(localOrigin, '.git'));
    const ref = merge ?? (await symbolicRef(originGit, 'HEAD'));
    if (ref) return resolveRef(originGit, ref);
  }
  const tracking = merge ? `refs/remotes/${remote}/${merge.replace(/^refs\/heads\//, '')}` : await symbolicRef(gitDir, `refs/remotes/${remote}/HEAD`);
  return tracking ? resolveRef(gitDir, tracking) : undefined;
}

/** The fetch URL of the clone's origin, from .git/config (no git spawned). */
export async function readRemoteUrl(clone: string, remote = 'origin'): Promise<string | undefined> {
  try {
    return parseGitConfig(await readFile(join(clone, '.git', 'config'), 'utf8')).get(`remote "${remote}"`)?.get('url');
  } catch {
    return undefined;
  }
}

function localRepoPath(url: string, clone: string): string | undefined {
  if (url.startsWith('file://')) return decodeURIComponent(url.slice('file://'.length));
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url) || /^[^/]+@[^:]+:/.test(url)) return undefined;
  return isAbsolute(url) ? url : resolve(clone, url);
}

async function symbolicRef(gitDir: string, name: string): Promise<string | undefined> {
  try {
    return /^ref: (.+)$/.exec((await readFile(join(gitDir, name), 'utf8')).trim())?.[1];
  } catch {
    return undefined;
  }
}

async function resolveRef(gitDir: string, ref: string): Promise<string | undefined> {
  try {
    const loose = (await readFile(join(gitDir, ref), 'utf8')).trim();
    if (/^[0-9a-f]{40}$/.test(loose)) return loose;
  } catch {
    // Packed.
  }
  try {
    for (const line of (await readFile(join(gitDir, 'packed-refs'), 'utf8')).split('\n')) {
      const [sha, name] = line.split(' ');
      if (name === ref && sha && /^[0-9a-f]{40}$/.test(sha)) return sha;
    }
  } catch {
    // None.
  }
  return undefined;
}

function parseGitConfig(text: string): Map<string, Map<string, string>> {
  const sections = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      const name = header[1]!.replace(/^(\S+)\s+"/, (_, s: string) => `${s.toLowerCase()} "`);
      current = new Map();
      sections.set(name, current);
      continue;
    }
    const pair = /^([A-Za-z0-9-]+)\s*=\s*(.*)$/.exec(line);
    if (pair && current) current.set(pair[1]!.toLowerCase(), pair[2]!.replace(/^"(.*)"$/, '$1'));
  }
  return sections;
}

async function countDivergence(clone: string, commit: string, upstream: string): Promise<{ ahead: number; behind: number } | undefined> {
  try {
    const out = await withGit({ baseDir: clone }, (g) => g.raw(['rev-list', '--left-right', '--count', `${commit}...${upstream}`]));
    const [ahead, behind] = out.trim().split(/\s+/).map(Number);
    if (Number.isInteger(ahead) && Number.isInteger(behind)) return { ahead: ahead!, behind: behind! };
  } catch {
    // The upstream commit is not in the clone yet (not fetched): behind by an unknown count.
  }
  return undefined;
}
