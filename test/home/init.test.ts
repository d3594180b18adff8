import { lstat, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { json, runCli } from '../helpers/cli.js';
import { git } from '../helpers/git.js';
import { tempDir } from '../helpers/temp.js';
import { RUNTIME_DEPENDENCIES } from '../../src/home/shared-runtime.js';

interface InitResult {
  home: string;
  created: boolean;
  runtimeCommit: string;
  changes: string[];
}

describe('animus init', () => {
  it('creates the home, the shared runtime and the runtime repo; a second run changes nothing', async () => {
    const home = join(await tempDir('init'), 'home');
    const first = json<InitResult>(await runCli(['init', '--json'], { home }));
    expect(first).toMatchObject({ home, created: true });
    expect((await stat(home)).mode & 0o777).toBe(0o700);
    for (const name of RUNTIME_DEPENDENCIES) {
      const link = join(home, 'node_modules', name);
      expect((await lstat(link)).isSymbolicLink()).toBe(true);
      expect((await stat(join(link, 'package.json'))).isFile()).toBe(true);
    }
    expect(await git(['rev-parse', 'main'], join(home, '.animus', 'runtime.git'))).toBe(first.runtimeCommit);
    expect(await git(['ls-tree', '--name-only', 'main'], join(home, '.animus', 'runtime.git'))).toBe('main.js\npackage.json');

    const second = json<InitResult>(await runCli(['init', '--json'], { home }));
    expect(second).toMatchObject({ created: false, changes: [], runtimeCommit: first.runtimeCommit });
  });

  it('repairs what is missing or wrong, and only that', async () => {
    const root = await tempDir('init-repair');
    const home = join(root, 'home');
    await runCli(['init', '--json'], { home });
    const tree = await git(['rev-parse', 'main^{tree}'], join(home, '.animus', 'runtime.git'));
    await rm(join(home, 'node_modules', 'dotenv'));
    await rm(join(home, 'node_modules', 'telegram'));
    await symlink(root, join(home, 'node_modules', 'telegram'));
    await rm(join(home, '.animus', 'runtime.git'), { recursive: true });

    const repaired = json<InitResult>(await runCli(['init', '--json'], { home }));
    expect(repaired.changes).toEqual(
      expect.arrayContaining(['created shared runtime link dotenv', 'relinked shared runtime link telegram', expect.stringMatching(/^published runtime/)]),
    );
    expect(repaired.changes).toHaveLength(3);
    expect(await readlink(join(home, 'node_modules', 'telegram'))).not.toBe(root);
    // Same build, same tree.
    expect(await git(['rev-parse', 'main^{tree}'], join(home, '.animus', 'runtime.git'))).toBe(tree);
  });

  it('refuses a home that is a file', async () => {
    const root = await tempDir('init-file');
    const file = join(root, 'file');
    await writeFile(file, 'x');
    const result = await runCli(['init'], { home: file });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/exists and is not a folder/);
  });
});
