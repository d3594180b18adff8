import { resolve } from 'node:path';
import { AnimusError } from '../core/errors.js';
import { GitFailure, runGit } from '../git/run.js';

/** The few git operations an update needs on an agent's clone, through the one git runner. */
export async function git(clone: string, args: string[], signal?: AbortSignal): Promise<string> {
  return runGit(args, { cwd: clone, signal });
}

export async function tryGit(clone: string, args: string[]): Promise<string | undefined> {
  try {
    return await git(clone, args);
  } catch (error) {
    if (error instanceof GitFailure) return undefined;
    throw error;
  }
}

export async function currentCommit(clone: string): Promise<string> {
  return git(clone, ['rev-parse', '--verify', 'HEAD^{commit}']);
}

/** The branch checked out, or undefined on a detached HEAD. */
export async function currentBranch(clone: string): Promise<string | undefined> {
  const ref = await tryGit(clone, ['symbolic-ref', '--quiet', '--short', 'HEAD']);
  return ref === undefined || ref === '' ? undefined : ref;
}

/** Tracked files changed in the clone (untracked ones never stop an update). */
export async function localChanges(clone: string): Promise<string[]> {
  const out = await git(clone, ['status', '--porcelain', '--untracked-files=no']);
  return out.trim() === '' ? [] : out.split('\n').map((line) => line.slice(3));
}

export async function originUrl(clone: string): Promise<string | undefined> {
  return (await tryGit(clone, ['config', '--get', 'remote.origin.url'])) || undefined;
}

/** Whether the clone's origin is this local path (the home's runtime repo). */
export function isSameRepoPath(url: string | undefined, path: string): boolean {
  if (!url || /^[a-z][a-z0-9+.-]*:\/\//i.test(url) || /^[^/]+@[^:]+:/.test(url)) return false;
  return resolve(url.replace(/^file:\/\//, '')) === resolve(path);
}

export async function fetchOrigin(clone: string, signal?: AbortSignal): Promise<void> {
  try {
    await git(clone, ['fetch', '--quiet', '--prune', '--tags', '--force', 'origin'], signal);
  } catch (error) {
    if (error instanceof GitFailure) throw new AnimusError('EGIT', `cannot fetch ${clone}'s origin: ${error.message}; check that the runtime repository is reachable`, { cause: error });
    throw error;
  }
}

export interface Target {
  commit: string;
  /** Set when the target is a branch of origin: the clone stays on that branch. */
  branch?: string;
  /** What was asked for, for the record: `origin/main`, a tag, a commit. */
  ref: string;
}

/**
 * What to move to: `--ref` as a branch of origin, else a tag or commit; without it,
 * the upstream of the branch checked out. A detached clone (deployed at a tag or
 * commit) has no "newer" of its own: it needs `--ref`.
 */
export async function resolveTarget(clone: string, ref: string | undefined, agentId: string): Promise<Target> {
  if (ref !== undefined) {
    if (ref.trim() === '' || ref.startsWith('-')) throw new AnimusError('EUSAGE', `--ref "${ref}" is not a git ref: pass a branch, tag or commit of the runtime repository`);
    const branchCommit = await tryGit(clone, ['rev-parse', '--verify', '--quiet', `refs/remotes/origin/${ref}^{commit}`]);
    if (branchCommit) return { commit: branchCommit, branch: ref, ref: `origin/${ref}` };
    const commit = await tryGit(clone, ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]);
    if (commit) return { commit, ref };
    throw new AnimusError('EUSAGE', `--ref "${ref}" is not a branch, tag or commit of ${agentId}'s runtime repository: check the name (after a fetch)`);
  }
  const branch = await currentBranch(clone);
  if (!branch) {
    // Deployed with --ref, or recreated by a restore: no branch says what "newer" means.
    throw new AnimusError('EUSAGE', `${agentId}'s runtime is on a detached HEAD (pinned with --ref, or recreated by restore): pass --ref <branch|tag|commit> to choose what to update to, e.g. \`animus update ${agentId} --ref main\``, { detail: { pinned: true } });
  }
  const upstream = (await tryGit(clone, ['rev-parse', '--abbrev-ref', '--symbolic-full-name', `${branch}@{upstream}`])) ?? `origin/${branch}`;
  const commit = await tryGit(clone, ['rev-parse', '--verify', '--quiet', `${upstream}^{commit}`]);
  if (!commit) throw new AnimusError('EGIT', `${agentId}'s branch ${branch} has no upstream on origin (${upstream}): pass --ref <branch|tag|commit>`);
  return { commit, branch, ref: upstream };
}

export async function isAncestor(clone: string, ancestor: string, descendant: string): Promise<boolean> {
  return (await tryGit(clone, ['merge-base', '--is-ancestor', ancestor, descendant])) !== undefined;
}

/**
 * Checks out `commit`, on `branch` when given (created or reset there, its upstream
 * kept), else detached. The tree was verified clean first, so nothing is lost.
 */
export async function moveTo(clone: string, commit: string, branch: string | undefined): Promise<void> {
  try {
    if (branch) {
      await git(clone, ['checkout', '--quiet', '--force', '-B', branch, commit]);
      if ((await tryGit(clone, ['rev-parse', '--verify', '--quiet', `refs/remotes/origin/${branch}`])) !== undefined) {
        await tryGit(clone, ['branch', '--quiet', `--set-upstream-to=origin/${branch}`, branch]);
      }
    } else {
      await git(clone, ['checkout', '--quiet', '--force', '--detach', commit]);
    }
  } catch (error) {
    if (error instanceof GitFailure) throw new AnimusError('EGIT', `cannot check out ${commit.slice(0, 12)} in ${clone}: ${error.message}`, { cause: error });
    throw error;
  }
}

export async function commitSubject(clone: string, commit: string): Promise<string> {
  return (await tryGit(clone, ['log', '-1', '--format=%s', commit])) ?? '';
}
