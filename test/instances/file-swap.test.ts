import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/temp.js';
import { agentIdFromUuid } from '../../src/core/agent-id.js';
import { AnimusError } from '../../src/core/errors.js';
import { onNotice } from '../../src/core/notices.js';
import { agentPaths, homeLayout, type AgentPaths } from '../../src/home/layout.js';
import { recoverSwap, swapAgentFiles, type FileMove } from '../../src/instances/file-swap.js';
import { swapJournalOf, withAgentLock } from '../../src/instances/operation-lock.js';

/**
 * The journaled swap on real files. A process killed after any number of its renames
 * (and before or after the journal caught up with the last one) leaves a state that
 * recovery turns into all new files when the staged ones are still there, and into all
 * old files when they are gone: never a mix.
 */
let paths: AgentPaths;
let staging: string;
let moves: FileMove[];

beforeEach(async () => {
  const home = join(await tempDir('animus-swap'), 'home');
  paths = agentPaths(home, agentIdFromUuid('5d3c8a1e-7b2f-4c6d-9e0a-1f2b3c4d5e6f'));
  staging = join(homeLayout(home).stagingDir, 'restore-x.1.abc');
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  await mkdir(staging, { recursive: true });
  for (const name of ['animus.db', '.env']) {
    await writeFile(join(paths.dir, name), `old ${name}`);
    await writeFile(join(staging, name), `new ${name}`);
  }
  moves = ['animus.db', '.env'].flatMap((name): FileMove[] => [
    { kind: 'aside', from: join(paths.dir, name), to: join(paths.dir, `${name}.pre-restore-S`) },
    { kind: 'install', from: join(staging, name), to: join(paths.dir, name) },
  ]);
});

async function errorOf(work: () => Promise<unknown>): Promise<AnimusError> {
  const error = await work().then(() => undefined, (caught: unknown) => caught);
  if (error instanceof AnimusError) return error;
  throw new Error(`expected an AnimusError, got ${String(error)}`);
}

const contents = async () => Promise.all(['animus.db', '.env'].map((name) => readFile(join(paths.dir, name), 'utf8')));

/** What a process killed after `renamed` renames leaves, its journal saying `recorded` were done. */
async function killedAfter(renamed: number, recorded: number): Promise<void> {
  for (const move of moves.slice(0, renamed)) await rename(move.from, move.to);
  const journal = { format: 1, agent: paths.agent.id, label: 'restore', source: '/backups/x.animus-backup', pid: 999999, since: '2026-12-01T00:00:00.000Z', moves, done: recorded, discard: [] };
  await mkdir(dirname(swapJournalOf(paths)), { recursive: true });
  await writeFile(swapJournalOf(paths), JSON.stringify(journal));
}

describe('a swap of agent files', () => {
  it('moves everything and keeps the old files aside, with no journal left', async () => {
    await swapAgentFiles(paths, moves, { label: 'restore' });
    expect(await contents()).toEqual(['new animus.db', 'new .env']);
    expect(await readFile(join(paths.dir, '.env.pre-restore-S'), 'utf8')).toBe('old .env');
    expect(existsSync(swapJournalOf(paths))).toBe(false);
  });

  it('puts everything back when a rename fails, and says so in one line', async () => {
    await rm(join(staging, '.env'));
    const error = await errorOf(() => swapAgentFiles(paths, moves, { label: 'restore' }));
    expect(error.message).toMatch(/^restore of agent-\S+ failed while moving files \(.*ENOENT.*\); the previous files were put back$/);
    expect(await contents()).toEqual(['old animus.db', 'old .env']);
    expect(existsSync(swapJournalOf(paths))).toBe(false);
  });

  const cases = [0, 1, 2, 3, 4].flatMap((renamed) => [[renamed, renamed] as const, ...(renamed > 0 ? [[renamed, renamed - 1] as const] : [])]);

  it.each(cases)('killed after %i renames (journal says %i): finished while the staged files are there', async (renamed, recorded) => {
    await killedAfter(renamed, recorded);
    const told: string[] = [];
    onNotice((text) => told.push(text));
    try {
      expect(await recoverSwap(paths)).toMatch(/the restore of agent-\S+ from \/backups\/x\.animus-backup \(pid 999999, since 2026-12-01T00:00:00\.000Z\) was interrupted after it had verified everything/);
    } finally {
      onNotice(undefined);
    }
    expect(told).toHaveLength(1);
    expect(await contents()).toEqual(['new animus.db', 'new .env']);
    expect(await readFile(join(paths.dir, '.env.pre-restore-S'), 'utf8')).toBe('old .env');
    expect(existsSync(swapJournalOf(paths))).toBe(false);
  });

  it.each(cases)('killed after %i renames (journal says %i): undone once the staged files are gone', async (renamed, recorded) => {
    await killedAfter(renamed, recorded);
    await rm(staging, { recursive: true });
    if (renamed < 4) expect(await recoverSwap(paths)).toMatch(/could not be finished \(its staged files are gone\): the agent has its files from before again/);
    else await recoverSwap(paths);
    // All four done: nothing was left to move in, so the swap is whole.
    expect(await contents()).toEqual(renamed < 4 ? ['old animus.db', 'old .env'] : ['new animus.db', 'new .env']);
    expect(existsSync(swapJournalOf(paths))).toBe(false);
  });

  it('is put in order by the next holder of the agent lock, before its work', async () => {
    await killedAfter(2, 2);
    const seen = await withAgentLock(paths, { command: 'test' }, contents);
    expect(seen).toEqual(['new animus.db', 'new .env']);
  });

  it('refuses a journal that moves anything outside the agent folder or the staging area, in one line', async () => {
    await killedAfter(0, 0);
    const journal = JSON.parse(await readFile(swapJournalOf(paths), 'utf8'));
    for (const bad of [
      { ...journal, moves: [{ kind: 'aside', from: '/etc/passwd', to: join(paths.dir, 'x') }] },
      { ...journal, moves: [{ kind: 'install', from: '/tmp/evil', to: join(paths.dir, '.env') }] },
      { ...journal, moves: [{ kind: 'aside', from: join(paths.dir, '.env'), to: join(paths.dir, '..', 'other', '.env') }] },
      { ...journal, agent: 'agent-00000000-0000-4000-8000-000000000000' },
    ]) {
      await writeFile(swapJournalOf(paths), JSON.stringify(bad));
      const error = await errorOf(() => recoverSwap(paths));
      expect(error.message).toMatch(/is not a swap journal animus wrote \(.*\): an interrupted restore of agent-\S+ cannot be finished from it/);
      expect(error.message).not.toContain('\n');
    }
    expect(await contents()).toEqual(['old animus.db', 'old .env']);
  });
});
