import { existsSync, readdirSync, readFileSync, statSync, symlinkSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { openRotatingLog } from '../../src/runtime/log-file.js';
import { openDatabase } from '../../src/store/database.js';
import { storeInbound } from '../../src/store/inbound.js';
import { pokeRuntime } from '../../src/runtime/wake-socket.js';
import { deployTestAgent } from '../helpers/agents.js';
import { errorOf } from '../helpers/errors.js';
import { tempDir } from '../helpers/temp.js';
import { FAST_ENV, startRuntime, updateSettings } from './harness.js';

const MiB = 1024 * 1024;
const LIMIT = 0.1 * MiB;

/** Every line of logs/runtime.log and its rotated files (gunzipped), oldest first. */
function allLines(logs: string): string[] {
  const names = readdirSync(logs).filter((n) => /^runtime\.log(\.\d+\.gz)?$/.test(n));
  const rotated = names.filter((n) => n.endsWith('.gz')).sort((a, b) => Number(b.split('.')[2]) - Number(a.split('.')[2]));
  const text = [...rotated.map((n) => gunzipSync(readFileSync(join(logs, n))).toString('utf8')), existsSync(join(logs, 'runtime.log')) ? readFileSync(join(logs, 'runtime.log'), 'utf8') : ''].join('');
  return text.split('\n').filter((l) => l !== '');
}

describe("the runtime's own rotating log", () => {
  it('loses no line while a busy runtime rotates, and each file stays within log_max_mb', async () => {
    const home = await tempDir('animus-rotate');
    const { paths } = await deployTestAgent(home, { mode: 'echo' });
    await updateSettings(paths, (s) => {
      s.log_max_mb = 0.1;
      s.log_keep = 20;
      s.debug_mode = true;
    });
    const runtime = startRuntime(paths, FAST_ENV);
    await runtime.waitForLog((l) => l.msg === 'runtime ready');
    // A burst written into the queue while the runtime answers it: it logs as it goes.
    const COUNT = 2000;
    const db = openDatabase(paths.db);
    try {
      for (let i = 0; i < COUNT; i++) {
        storeInbound(db, { platform: 'local', platformUserId: 'burst', username: 'burst', text: `burst message ${i} ${'x'.repeat(200)}` });
        if (i % 250 === 0) await pokeRuntime(paths.dir);
      }
    } finally {
      db.close();
    }
    await pokeRuntime(paths.dir);
    await runtime.waitForLog(() => runtime.logs.filter((l) => l.msg === 'item completed').length === COUNT, 240_000);
    runtime.child.kill('SIGTERM');
    expect((await runtime.exited).code).toBe(0);

    const files = readdirSync(paths.logs);
    const rotated = files.filter((n) => /^runtime\.log\.\d+\.gz$/.test(n));
    expect(rotated.length).toBeGreaterThanOrEqual(2);
    expect(files).not.toContain('runtime.log.1');
    // Every file within the limit (the rotated ones were, before compression).
    for (const name of rotated) expect(gunzipSync(readFileSync(join(paths.logs, name))).length).toBeLessThanOrEqual(LIMIT);
    expect(statSync(paths.outLog).size).toBeLessThanOrEqual(LIMIT);
    for (const name of [...rotated, 'runtime.log']) expect(statSync(join(paths.logs, name)).mode & 0o777).toBe(0o600);

    // Nothing lost, nothing doubled: the lines on disk are exactly the lines the runtime wrote (its stdout copy).
    const lines = allLines(paths.logs);
    expect(lines).toEqual(runtime.stdout().split('\n').filter((l) => l !== ''));
    const completed = lines.map((l) => JSON.parse(l) as { msg: string; item?: number }).filter((l) => l.msg === 'item completed');
    expect(new Set(completed.map((l) => l.item)).size).toBe(COUNT);
  }, 300_000);

  it('keeps only log_keep rotated files, newest as .1.gz', async () => {
    const dir = await tempDir('animus-rotate-keep');
    const log = openRotatingLog({ agentDir: dir, maxBytes: 1000, keep: 2 });
    for (let i = 0; i < 100; i++) log.write(`${JSON.stringify({ n: i, pad: 'p'.repeat(80) })}\n`);
    log.close();
    expect(readdirSync(join(dir, 'logs')).sort()).toEqual(['runtime.log', 'runtime.log.1.gz', 'runtime.log.2.gz']);
    const lines = allLines(join(dir, 'logs')).map((l) => (JSON.parse(l) as { n: number }).n);
    // The newest lines, in order, ending with the last one written.
    expect(lines.at(-1)).toBe(99);
    expect(lines).toEqual(Array.from({ length: lines.length }, (_, i) => 100 - lines.length + i));
  });

  it('refuses to open a runtime.log that is a symlink, or a logs/ linked elsewhere', async () => {
    const dir = await tempDir('animus-rotate-link');
    const outside = await tempDir('animus-rotate-outside');
    writeFileSync(join(outside, 'target'), 'untouched');
    mkdirSync(join(dir, 'logs'));
    symlinkSync(join(outside, 'target'), join(dir, 'logs', 'runtime.log'));
    expect(errorOf(() => openRotatingLog({ agentDir: dir, maxBytes: MiB, keep: 1 })).code).toBe('EUNSAFEPATH');
    expect(readFileSync(join(outside, 'target'), 'utf8')).toBe('untouched');
    const other = await tempDir('animus-rotate-link2');
    symlinkSync(outside, join(other, 'logs'));
    expect(errorOf(() => openRotatingLog({ agentDir: other, maxBytes: MiB, keep: 1 })).code).toBe('EUNSAFEPATH');
    expect(readdirSync(outside)).toEqual(['target']);
  });
});
