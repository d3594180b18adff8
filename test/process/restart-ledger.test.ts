import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { homeLayout } from '../../src/home/layout.js';
import { COMPACT_BYTES, ledgerPath, noteRequestedRestart, readRequestedRestarts } from '../../src/process/restart-ledger.js';
import { tempDir } from '../helpers/temp.js';

describe('the ledger of restarts animus requested', () => {
  it('counts each noted restart, and stays bounded: a large ledger is compacted to one line per process', async () => {
    const home = await tempDir('animus-ledger');
    mkdirSync(homeLayout(home).stateDir, { recursive: true });
    const a = ['animus-agent-1111', '5d0c7a52-0d1e-4f3a-9b8c-7e6f5a4b3c2d'] as const;
    const b = ['animus-agent-2222', '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d'] as const;
    for (let i = 0; i < 3; i++) noteRequestedRestart(home, ...a);
    const many = Math.ceil(COMPACT_BYTES / 50) + 10;
    for (let i = 0; i < many; i++) noteRequestedRestart(home, ...b);
    expect(statSync(ledgerPath(home)).size).toBeGreaterThan(COMPACT_BYTES);

    const counts = readRequestedRestarts(home);
    expect(counts.get(a.join(' '))).toBe(3);
    expect(counts.get(b.join(' '))).toBe(many);
    // Compacted: two lines, private, and the counts read back the same.
    const after = statSync(ledgerPath(home));
    expect(after.size).toBeLessThan(200);
    expect(after.mode & 0o777).toBe(0o600);
    noteRequestedRestart(home, ...a);
    const again = readRequestedRestarts(home);
    expect(again.get(a.join(' '))).toBe(4);
    expect(again.get(b.join(' '))).toBe(many);
  });

  it('reads nothing from a home without its state folder, and ignores a line it cannot read', async () => {
    const home = await tempDir('animus-ledger-none');
    noteRequestedRestart(home, 'animus-agent-3333', '1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f');
    expect(readRequestedRestarts(home).size).toBe(0);
    mkdirSync(homeLayout(home).stateDir);
    writeFileSync(ledgerPath(home), 'animus-agent-3333 1c2d3e4f many\nanimus-agent-3333 1c2d3e4f -2\nanimus-agent-3333 1c2d3e4f\n');
    expect([...readRequestedRestarts(home)]).toEqual([['animus-agent-3333 1c2d3e4f', 1]]);
  });
});
