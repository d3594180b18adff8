import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCloneCommit } from '../../src/git/refs.js';
import { deployTestAgent } from '../helpers/agents.js';
import { json, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const SHA = 'a'.repeat(40);

describe("reading a clone's .git files", () => {
  it('reads HEAD, a loose ref and packed-refs', async () => {
    const clone = await tempDir('animus-refs');
    mkdirSync(join(clone, '.git', 'refs', 'heads'), { recursive: true });
    writeFileSync(join(clone, '.git', 'HEAD'), `${SHA}\n`);
    expect(readCloneCommit(clone)).toBe(SHA);
    writeFileSync(join(clone, '.git', 'HEAD'), 'ref: refs/heads/main\n');
    writeFileSync(join(clone, '.git', 'packed-refs'), `# pack-refs with: peeled\n${'b'.repeat(40)} refs/heads/main\n`);
    expect(readCloneCommit(clone)).toBe('b'.repeat(40));
    writeFileSync(join(clone, '.git', 'refs', 'heads', 'main'), `${SHA}\n`);
    expect(readCloneCommit(clone)).toBe(SHA);
  });

  it('gives up on a HEAD that is a link to /dev/zero or a FIFO instead of reading it forever', async () => {
    const clone = await tempDir('animus-refs-hostile');
    mkdirSync(join(clone, '.git'));
    symlinkSync('/dev/zero', join(clone, '.git', 'HEAD'));
    expect(readCloneCommit(clone)).toBeUndefined();
    rmSync(join(clone, '.git', 'HEAD'));
    execFileSync('mkfifo', [join(clone, '.git', 'HEAD')]);
    expect(readCloneCommit(clone)).toBeUndefined();
  });

  it('a FIFO planted as the clone HEAD of one agent leaves list and health answering for the home', async () => {
    const home = join(await tempDir('animus-refs-home'), 'home');
    const { paths, id } = await deployTestAgent(home, { mode: 'echo' });
    const head = join(paths.clone, '.git', 'HEAD');
    rmSync(head);
    execFileSync('mkfifo', [head]);
    const list = await runCli(['list', '--json'], { home });
    expect(list.code, list.stderr).toBe(0);
    expect(json<Array<{ id: string; commit?: string | null }>>(list).find((a) => a.id === id)?.commit ?? undefined).toBeUndefined();
    const health = await runCli(['health', id, '--json', '--offline'], { home });
    expect([0, 1]).toContain(health.code);
    expect(health.stderr).not.toMatch(/\n\s+at /);
  });
});
