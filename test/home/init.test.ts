import { chmod, lstat, mkdir, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { json, runCli } from '../helpers/cli.js';
import { git } from '../helpers/git.js';
import { tempDir } from '../helpers/temp.js';
import { RUNTIME_DEPENDENCIES } from '../../src/home/shared-runtime.js';
import { loadOrCreateToken } from '../../src/serve/auth.js';
import { runHealth } from '../../src/health/run-health.js';
import { deployTestAgent } from '../helpers/agents.js';

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

  it("keeps the group's read that `systemd install --run-as` gave the home and .animus (0750), and makes anything looser 0700", async () => {
    const home = join(await tempDir('init-modes'), 'home');
    await runCli(['init'], { home });
    const state = join(home, '.animus');
    const locks = join(state, 'locks');
    await mkdir(locks, { recursive: true });
    // What `systemd install --system --run-as` leaves (it runs as root; here the modes alone).
    await chmod(home, 0o750);
    await chmod(state, 0o750);
    await chmod(locks, 0o2770);
    const mode = async (path: string) => (await stat(path)).mode & 0o7777;

    const kept = json<InitResult>(await runCli(['init', '--json'], { home }));
    expect(kept.changes).toEqual([]);
    expect([await mode(home), await mode(state), await mode(locks)]).toEqual([0o750, 0o750, 0o2770]);
    // The dashboard's token and health's cache, written there later, leave it so too.
    await loadOrCreateToken(home);
    await deployTestAgent(home);
    await new Promise((resolve) => setTimeout(resolve, 25));
    await runHealth({ home, settleMs: 0 });
    expect((await stat(join(state, 'health-cache'))).isFile()).toBe(true);
    expect([await mode(home), await mode(state)]).toEqual([0o750, 0o750]);

    await chmod(home, 0o710);
    expect(json<InitResult>(await runCli(['init', '--json'], { home })).changes).toEqual([]);
    expect(await mode(home)).toBe(0o710);

    // Wider than that (group write, anything for others) is made 0700, and said.
    for (const [homeMode, stateMode] of [[0o755, 0o770], [0o770, 0o757], [0o775, 0o751]]) {
      await chmod(home, homeMode!);
      await chmod(state, stateMode!);
      const tightened = json<InitResult>(await runCli(['init', '--json'], { home }));
      expect(tightened.changes).toContain(`set ${home} to mode 0700`);
      expect([await mode(home), await mode(state)]).toEqual([0o700, 0o700]);
    }
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
