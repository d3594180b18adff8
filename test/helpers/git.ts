import { execa } from 'execa';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

const IDENTITY = {
  GIT_AUTHOR_NAME: 'test',
  GIT_AUTHOR_EMAIL: 'test@localhost',
  GIT_COMMITTER_NAME: 'test',
  GIT_COMMITTER_EMAIL: 'test@localhost',
};

export async function git(args: string[], cwd: string): Promise<string> {
  const result = await execa('git', args, { cwd, env: IDENTITY });
  return result.stdout.trim();
}

/**
 * A real bare repository in `dir` with one commit on `main` holding `files`.
 * Returns the commit id.
 */
export async function makeBareRepo(dir: string, files: Record<string, string>): Promise<string> {
  await mkdir(dir, { recursive: true });
  await git(['init', '--quiet', '--bare', '--initial-branch=main'], dir);
  return commitToBare(dir, files, 'initial');
}

/** Adds a commit with `files` (replacing the tree's files of the same names) on `branch`. */
export async function commitToBare(bare: string, files: Record<string, string>, message: string, branch = 'main'): Promise<string> {
  const work = await mkdtemp(join(dirname(bare), 'work-'));
  try {
    await git(['clone', '--quiet', bare, work], dirname(bare));
    await git(['checkout', '--quiet', '-B', branch], work);
    for (const [name, content] of Object.entries(files)) {
      await mkdir(dirname(join(work, name)), { recursive: true });
      await writeFile(join(work, name), content);
    }
    await git(['add', '--all'], work);
    await git(['commit', '--quiet', '--allow-empty', '-m', message], work);
    await git(['push', '--quiet', 'origin', `HEAD:refs/heads/${branch}`], work);
    // Awaited here: the finally below removes the work tree, and must wait for git to finish reading it.
    return await git(['rev-parse', 'HEAD'], work);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
