import { chown, lstat, mkdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../src/core/fs.js';
import { checkAccountName, chownTree, lookupAccount } from '../../src/process/systemd-account.js';
import { tempDir } from '../helpers/temp.js';

const NOBODY = 65534;

describe('the account of a system unit', () => {
  it('gives a folder to the account without following a symlink out of it', async (context) => {
    if (process.getuid?.() !== 0) context.skip();
    const root = await tempDir('animus-chown');
    const agent = join(root, 'agent');
    const outside = join(root, 'outside.env');
    await writeFile(outside, 'AGENT_API_KEY=sk-let-4f9a1c2e8b7d\n');
    await mkdir(join(agent, 'logs'), { recursive: true });
    await writeFile(join(agent, 'logs', 'runtime.log'), 'line\n');
    await symlink(outside, join(agent, 'logs', 'runtime.err.log'));
    await symlink(root, join(agent, 'up'));
    await chownTree(agent, NOBODY, NOBODY);
    for (const path of [agent, join(agent, 'logs'), join(agent, 'logs', 'runtime.log')]) expect((await stat(path)).uid, path).toBe(NOBODY);
    // The links themselves change hands; what they point at does not.
    expect((await lstat(join(agent, 'logs', 'runtime.err.log'))).uid).toBe(NOBODY);
    expect((await stat(outside)).uid).toBe(0);
    expect((await stat(root)).uid).toBe(0);
  });

  it('looks accounts up through NSS and says when there is none', async () => {
    expect(await lookupAccount('root')).toMatchObject({ name: 'root', uid: 0, gid: 0, group: 'root' });
    expect(await lookupAccount('animus-no-such-account')).toBeUndefined();
  });

  it.each([['bob;rm'], ['a b'], ['../x'], ['']])('refuses %j as an account name', (name) => {
    expect(() => checkAccountName(name)).toThrow(/not a valid user or group name/);
  });
});

describe('root writing into a folder the account owns', () => {
  it('writes the file as the folder\'s owner, so the agent can still read it', async (context) => {
    if (process.getuid?.() !== 0) context.skip();
    const folder = await tempDir('animus-owner');
    await chown(folder, NOBODY, NOBODY);
    await writeFileAtomic(join(folder, 'settings.json'), '{}\n');
    expect(await stat(join(folder, 'settings.json'))).toMatchObject({ uid: NOBODY, gid: NOBODY });
    const mine = await tempDir('animus-owner-root');
    await writeFileAtomic(join(mine, 'x'), 'y');
    expect((await stat(join(mine, 'x'))).uid).toBe(0);
  });
});
