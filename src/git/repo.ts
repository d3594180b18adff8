import { readdir, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { AnimusError, describeError } from '../core/errors.js';
import { readCloneCommit } from './refs.js';
import { runGit } from './run.js';

/** A clone that takes longer is a remote that hangs: ended, and the deploy fails in one line. */
export const CLONE_TIMEOUT_MS = 10 * 60_000;

/** Identity for commits animus makes itself (the runtime source repo). */
export const ANIMUS_GIT_IDENTITY = {
  GIT_AUTHOR_NAME: 'animus',
  GIT_AUTHOR_EMAIL: 'animus@localhost',
  GIT_COMMITTER_NAME: 'animus',
  GIT_COMMITTER_EMAIL: 'animus@localhost',
};

export interface CloneOptions {
  repo: string;
  dest: string;
  ref?: string;
  signal?: AbortSignal;
}

/**
 * Clones `repo` into `dest` and checks out `ref` (branch, tag or commit). From a local
 * path git hardlinks the objects: cheap, and still a fully independent clone (no
 * alternates), so removing the source or another agent never breaks it. No template:
 * an agent's clone needs no sample hooks. A branch or tag is cloned in one git process;
 * a commit id needs a checkout after the clone.
 */
export async function cloneRepo(options: CloneOptions): Promise<string> {
  const ref = options.ref ?? 'HEAD';
  const byName = ref !== 'HEAD' && !/^[0-9a-f]{7,40}$/i.test(ref);
  const badRef = (error: unknown) =>
    gitError(`cannot check out "${ref}" from ${options.repo}`, error, 'check --ref (a branch, tag or commit of that repository)', options.signal);
  try {
    await runGit(['clone', '--quiet', '--template=', ...(byName ? ['--branch', ref] : ['--no-checkout']), '--', options.repo, options.dest], { signal: options.signal, timeoutMs: CLONE_TIMEOUT_MS, watchParent: true });
  } catch (error) {
    if (byName && /Remote branch .* not found/.test(describeError(error))) throw badRef(error);
    throw gitError(`cannot clone ${options.repo}`, error, 'check --repo (a git URL or path) and that it is reachable', options.signal);
  }
  if (!byName) {
    try {
      await runGit(['checkout', '--quiet', ref, '--'], { cwd: options.dest, signal: options.signal });
    } catch (error) {
      throw badRef(error);
    }
  }
  await trimClone(options.dest, options.signal);
  return headCommit(options.dest);
}

/**
 * Drops what a fresh clone holds but an agent never needs, so that a hundred clones
 * cost little more than their working trees: the refs go into packed-refs (one file
 * instead of a folder per ref), the clone's one-line reflogs and the optional
 * `origin/HEAD` pointer go. The result is an ordinary repository: status, fetch,
 * `@{upstream}` and fsck work as before, and git recreates any of it when needed.
 */
async function trimClone(dest: string, signal: AbortSignal | undefined): Promise<void> {
  try {
    await runGit(['pack-refs', '--all', '--prune'], { cwd: dest, signal });
    const gitDir = join(dest, '.git');
    await rm(join(gitDir, 'logs'), { recursive: true, force: true });
    await rm(join(gitDir, 'refs', 'remotes', 'origin', 'HEAD'), { force: true });
    await removeEmptyDirs(join(gitDir, 'refs'), false);
  } catch (error) {
    // Only a saving: a clone left untrimmed is as good, unless the user interrupted.
    if (signal?.aborted) throw gitError(`cannot finish the clone in ${dest}`, error, 'run the command again', signal);
  }
}

/** Removes the empty folders below `dir` (and `dir` itself when `self`), deepest first. */
async function removeEmptyDirs(dir: string, self: boolean): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) await removeEmptyDirs(join(dir, entry.name), true);
  }
  if (self && (await readdir(dir)).length === 0) await rmdir(dir);
}

export async function headCommit(dir: string): Promise<string> {
  const commit = readCloneCommit(dir);
  if (commit) return commit;
  return (await runGit(['rev-parse', 'HEAD'], { cwd: dir })).trim();
}

export function gitError(what: string, error: unknown, hint: string, signal?: AbortSignal): AnimusError {
  if (error instanceof AnimusError) return error;
  if (signal?.aborted) return new AnimusError('EINTERRUPTED', `${what}: interrupted`, { cause: error });
  const reason = describeError(error).replace(/^fatal: /, '');
  return new AnimusError('EGIT', `${what}: ${reason}; ${hint}`, { cause: error });
}
