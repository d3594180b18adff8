import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GitFailure, runGit } from '../../src/git/run.js';
import { makeBareRepo } from '../helpers/git.js';
import { tempDir } from '../helpers/temp.js';

const saved = { PATH: process.env.PATH, GIT_DIR: process.env.GIT_DIR };
afterEach(() => {
  process.env.PATH = saved.PATH;
  if (saved.GIT_DIR === undefined) delete process.env.GIT_DIR;
  else process.env.GIT_DIR = saved.GIT_DIR;
});

describe('runGit', () => {
  it("ignores a caller's GIT_DIR, which would point git at another repository", async () => {
    const root = await tempDir('run-git');
    const repo = join(root, 'repo.git');
    const commit = await makeBareRepo(repo, { 'a.txt': 'a\n' });
    process.env.GIT_DIR = join(root, 'elsewhere');
    expect(await runGit(['rev-parse', 'main'], { cwd: repo })).toBe(commit);
  });

  it("fails with git's own last line, without its fatal:/error: prefix", async () => {
    const root = await tempDir('run-git');
    const error = await runGit(['rev-parse', '--verify', 'no-such-ref'], { cwd: root }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GitFailure);
    expect((error as Error).message).toBe('not a git repository (or any of the parent directories): .git');
  });

  it('says git is not installed when there is none on the PATH', async () => {
    process.env.PATH = await tempDir('no-git');
    await expect(runGit(['--version'])).rejects.toMatchObject({ code: 'EGIT', message: expect.stringMatching(/^git is not installed/) });
  });

  it('is interrupted by its signal', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(runGit(['--version'], { signal: controller.signal })).rejects.toMatchObject({ code: 'EINTERRUPTED' });
  });
});
