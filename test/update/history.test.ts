import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { agentIdFromUuid } from '../../src/core/agent-id.js';
import { agentPathsIn } from '../../src/home/layout.js';
import { appendHistory, KEEP_SNAPSHOTS, pruneSnapshots, readHistory, snapshotName } from '../../src/update/history.js';
import { tempDir } from '../helpers/temp.js';

async function agentFolder() {
  const dir = join(await tempDir('history'), 'agent-40000000-0000-4000-8000-000000000004');
  await mkdir(dir, { recursive: true });
  return agentPathsIn(dir, agentIdFromUuid('40000000-0000-4000-8000-000000000004'));
}

describe('update history', () => {
  it('records entries and rewrites an entry when its outcome changes', async () => {
    const paths = await agentFolder();
    expect(await readHistory(paths)).toEqual([]);
    const record = await appendHistory(paths, { action: 'update', at: '2026-01-01T00:00:00.000Z', from: 'a'.repeat(40), to: 'b'.repeat(40), outcome: 'pending' });
    await record({ outcome: 'updated' });
    expect(await readHistory(paths)).toEqual([expect.objectContaining({ from: 'a'.repeat(40), outcome: 'updated' })]);
  });

  it('refuses a history file that is not one, naming it', async () => {
    const paths = await agentFolder();
    await mkdir(paths.updates, { recursive: true });
    await writeFile(join(paths.updates, 'history.json'), '{"entries": 3}');
    await expect(readHistory(paths)).rejects.toMatchObject({ exitCode: 5, message: expect.stringMatching(/history.json is not a valid update history/) });
  });

  it('keeps only the newest snapshots', async () => {
    const paths = await agentFolder();
    await mkdir(paths.updates, { recursive: true });
    const names = Array.from({ length: KEEP_SNAPSHOTS + 2 }, (_, i) => snapshotName(new Date(Date.UTC(2026, 0, i + 1)), `${i}`.repeat(40)));
    for (const name of names) await writeFile(join(paths.updates, name), '');
    await writeFile(join(paths.updates, 'pre-rollback-x.db'), '');
    expect(await pruneSnapshots(paths)).toEqual(names.slice(0, 2));
    expect((await readdir(paths.updates)).sort()).toEqual([...names.slice(2), 'pre-rollback-x.db'].sort());
  });
});
