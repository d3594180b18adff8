import type { SimpleGit } from 'simple-git';
import { readdir, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { AnimusError, describeError } from '../core/errors.js';
import { readCloneCommit } from './refs.js';

/** Identity for commits animus makes itself (the runtime source repo). */
export const ANIMUS_GIT_IDENTITY = {
  GIT_AUTHOR_NAME: 'animus',
  GIT_AUTHOR_EMAIL: 'animus@localhost',
  GIT_COMMITTER_NAME: 'animus',
  GIT_COMMITTER_EMAIL: 'animus@localhost',
};

export interface GitOptions {
  baseDir?: string;
  signal?: AbortSignal;
}

let factory: typeof import('simple-git').simpleGit | undefined;

/**
 * Runs `work` with a simple-git instance, loaded on first use so commands that never
 * touch git do not pay for it. (A SimpleGit is thenable, so it cannot be the value
 * of a promise: hence a callback rather than an async getter.)
 */
export async function withGit<T>(options: GitOptions, work: (git: SimpleGit) => Promise<T>, env: Record<string, string> = {}): Promise<T> {
  factory ??= (await import('simple-git')).simpleGit;
  const instance = factory({ baseDir: options.baseDir ?? process.cwd(), ...(options.signal ? { abort: options.signal } : {}) });
  // Never let git stop to ask for a password in a scripted run.
  return work(instance.env({ ...withoutInteractiveTools(process.env), GIT_TERMINAL_PROMPT: '0', ...env }));
}

/**
 * simple-git refuses to run at all when EDITOR, PAGER and the like are set (npm sets
 * EDITOR for every script; most shells set PAGER). Animus never runs git
 * interactively, so these are dropped rather than allowed.
 */
function withoutInteractiveTools(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const key of Object.keys(out)) {
    if (/^(EDITOR|PAGER|PREFIX|GIT_EDITOR|GIT_PAGER|GIT_SEQUENCE_EDITOR)$/i.test(key)) delete out[key];
  }
  return out;
}

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
    await runGitCancellable(['clone', '--quiet', '--template=', ...(byName ? ['--branch', ref] : ['--no-checkout']), '--', options.repo, options.dest], undefined, options.signal);
  } catch (error) {
    if (byName && /Remote branch .* not found/.test(describeError(error))) throw badRef(error);
    throw gitError(`cannot clone ${options.repo}`, error, 'check --repo (a git URL or path) and that it is reachable', options.signal);
  }
  if (!byName) {
    try {
      await runGitCancellable(['checkout', '--quiet', ref, '--'], options.dest, options.signal);
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
    await runGitCancellable(['pack-refs', '--all', '--prune'], dest, signal);
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

/**
 * Runs git in a process group of its own and, when the signal aborts, ends the whole
 * group and waits for it: a clone over the network has helper processes (remote-http)
 * that would otherwise outlive us and keep writing into a folder being cleaned up.
 */
async function runGitCancellable(args: string[], cwd: string | undefined, signal: AbortSignal | undefined): Promise<void> {
  // node:child_process rather than execa: deploy is on this path and execa's module
  // tree would cost more start-up than the few lines below.
  const { spawn } = await import('node:child_process');
  const child = spawn('git', args, { cwd, detached: true, env: { ...process.env, GIT_TERMINAL_PROMPT: '0' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const killGroup = () => {
    try {
      if (child.pid) process.kill(-child.pid, 'SIGTERM');
    } catch {
      // Already gone.
    }
  };
  signal?.addEventListener('abort', killGroup, { once: true });
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', resolve);
    });
    if (code !== 0) throw new Error(stderr.trim() || `git ${args[0]} exited with ${code}`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new AnimusError('EGIT', 'git is not installed: install it (apt-get install git) and try again');
    throw error;
  } finally {
    signal?.removeEventListener('abort', killGroup);
  }
}

export async function headCommit(dir: string): Promise<string> {
  const commit = readCloneCommit(dir);
  if (commit) return commit;
  return (await withGit({ baseDir: dir }, (g) => g.revparse(['HEAD']))).trim();
}

export function gitError(what: string, error: unknown, hint: string, signal?: AbortSignal): AnimusError {
  if (error instanceof AnimusError) return error;
  if (signal?.aborted) return new AnimusError('EINTERRUPTED', `${what}: interrupted`, { cause: error });
  const reason = describeError(error).replace(/^fatal: /, '');
  return new AnimusError('EGIT', `${what}: ${reason}; ${hint}`, { cause: error });
}
