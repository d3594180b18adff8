import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SETTINGS_FIELDS } from '../../src/config/settings.js';
import { EXIT } from '../../src/core/errors.js';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

/** The README is the front door: it must not fall behind the code. */
describe('README', () => {
  it('documents every settings key', async () => {
    const readme = await readFile(join(REPO_ROOT, 'README.md'), 'utf8');
    const missing = SETTINGS_FIELDS.map((f) => f.path).filter((path) => !readme.includes(`\`${path}\``));
    expect(missing).toEqual([]);
  });

  it('documents every exit code', async () => {
    const readme = await readFile(join(REPO_ROOT, 'README.md'), 'utf8');
    const missing = Object.values(EXIT).filter((code) => !new RegExp(`^\\| ${code} \\|`, 'm').test(readme));
    expect(missing).toEqual([]);
  });

  it('documents every top-level command', async () => {
    const readme = await readFile(join(REPO_ROOT, 'README.md'), 'utf8');
    const help = await runCli(['--help'], { home: await tempDir('readme') });
    const commands = [...help.stdout.matchAll(/^ {2}([a-z][a-z-]*)(?:\|[a-z]+)? /gm)].map((m) => m[1]!).filter((c) => c !== 'help');
    expect(commands.length).toBeGreaterThan(10);
    // `animus start\|stop\|restart …` documents three commands.
    const documented = new Set([...readme.matchAll(/`animus ([a-z|\\-]+)/g)].flatMap((m) => m[1]!.split(/\\?\|/)));
    expect(commands.filter((command) => !documented.has(command))).toEqual([]);
  });

  it('names the setup and test commands that .ci/run runs', async () => {
    const readme = await readFile(join(REPO_ROOT, 'README.md'), 'utf8');
    const ci = await readFile(join(REPO_ROOT, '.ci', 'run'), 'utf8');
    for (const command of ['npm ci && npm run setup', 'npm test']) {
      expect(readme).toContain(command);
      expect(ci).toMatch(new RegExp(`^${command}$`, 'm'));
    }
  });
});
