import { execa } from 'execa';
import { cp, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

/**
 * bin/animus.js on an install that is not whole: one line and the documented exit code,
 * never a stack trace. A copy of the package with parts left out, in a temp folder.
 */
async function install(parts: string[]): Promise<string> {
  const root = await tempDir('animus-launcher');
  for (const part of ['bin/animus.js', 'bin/package.json', ...parts]) {
    await mkdir(join(root, part, '..'), { recursive: true });
    await cp(join(REPO_ROOT, part), join(root, part));
  }
  return root;
}

const run = (root: string) => execa(process.execPath, [join(root, 'bin', 'animus.js'), '--version'], { reject: false, env: { PATH: process.env.PATH, HOME: root, XDG_CACHE_HOME: join(root, 'cache') }, extendEnv: false });

describe('the launcher', () => {
  it('not built: one line that says how to build, exit 6', async () => {
    const root = await install([]);
    const result = await run(root);
    expect(result.exitCode).toBe(6);
    expect(result.stderr).toBe(`animus: it is not built yet: run \`npm run build\` in ${root}`);
  });

  it('a build without its bundle: one line, exit 70, no stack trace', async () => {
    const root = await install(['dist/cli/launch.cjs']);
    const result = await run(root);
    expect(result.exitCode).toBe(70);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/^animus: cannot start the CLI \(ENOENT.*main\.cjs'?\): run `npm run build` in /);
  });
});
