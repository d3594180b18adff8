import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { trimLog } from '../../src/process/trim-log.js';
import { tempDir } from '../helpers/temp.js';

describe('trimLog', () => {
  it('trims a log it does not write (runtime.err.log) to its last lines', async () => {
    const dir = await tempDir('animus-trim');
    mkdirSync(join(dir, 'logs'));
    writeFileSync(join(dir, 'logs', 'runtime.err.log'), Array.from({ length: 5000 }, (_, i) => `line ${i}`).join('\n') + '\n');
    expect(trimLog(dir, 'logs/runtime.err.log', 10_000, 2000)).toBe(true);
    const text = readFileSync(join(dir, 'logs', 'runtime.err.log'), 'utf8');
    expect(text.length).toBeLessThanOrEqual(2100);
    expect(text.split('\n')[0]).toMatch(/^\[animus: older lines trimmed/);
    expect(text.trimEnd().split('\n').at(-1)).toBe('line 4999');
    expect(trimLog(dir, 'logs/runtime.err.log', 10_000, 2000)).toBe(false);
  });
});
