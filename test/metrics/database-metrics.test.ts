import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeBrocaDatabase } from '../helpers/broca.js';
import { tempDir } from '../helpers/temp.js';
import { writeTraffic, type TrafficRow } from '../helpers/traffic.js';
import { readDatabaseMetrics } from '../../src/metrics/database-metrics.js';
import { percentileOfSorted } from '../../src/metrics/percentile.js';
import { openDatabase } from '../../src/store/database.js';
import { MetricsCache } from '../../src/metrics/metrics-cache.js';
import { SCHEMA_VERSION } from '../../src/store/migrations.js';

const NOW = Date.parse('2026-11-30T12:00:00Z');
const MIN = 60_000;
const HOUR = 60 * MIN;

// Seven messages whose numbers are worked out by hand below.
const ROWS: TrafficRow[] = [
  { agoMs: 10 * MIN, latencyMs: 100, tokens: { prompt: 10, completion: 5 }, requests: [{ outcome: 'replied', stopReason: 'end_turn' }] },
  { agoMs: 30 * MIN, latencyMs: 300, tokens: { prompt: 20, completion: 10 }, requests: [{ outcome: 'retry', errorKind: 'timeout' }, { outcome: 'replied', stopReason: 'end_turn' }] },
  { agoMs: 5 * HOUR, latencyMs: 200, tokens: { prompt: 1, completion: 1 }, delivery: 'failed', requests: [{ outcome: 'replied' }] },
  { agoMs: 72 * HOUR, latencyMs: 1000, tokens: { prompt: 100, completion: 50 }, requests: [{ outcome: 'retry', errorKind: 'rate_limited', httpStatus: 429 }, { outcome: 'replied', stopReason: 'max_steps' }] },
  { agoMs: 2 * HOUR, status: 'failed', requests: [{ outcome: 'failed', errorKind: 'http_4xx', httpStatus: 401 }] },
  { agoMs: 20 * MIN, status: 'pending', iso: true, requests: [{ outcome: 'retry', errorKind: 'connection' }] },
  { agoMs: 48 * HOUR, status: 'failed', requests: [{ outcome: 'abandoned', errorKind: 'something_new' }, { outcome: 'weird_outcome' }] },
];

let migrated: string;

beforeAll(async () => {
  migrated = join(await tempDir('metrics-db'), 'animus.db');
  openDatabase(migrated, { create: true }).close();
  writeTraffic(migrated, ROWS, NOW);
});

describe('readDatabaseMetrics on a database the runtime filled', () => {
  it('counts messages in and out per window', () => {
    const { windows } = readDatabaseMetrics(migrated, NOW);
    expect([windows['1h'].messagesIn, windows['24h'].messagesIn, windows.all.messagesIn]).toEqual([3, 5, 7]);
    expect([windows['1h'].messagesOut, windows['24h'].messagesOut, windows.all.messagesOut]).toEqual([2, 3, 4]);
  });

  it('takes nearest-rank latency quantiles over each window', () => {
    const { windows } = readDatabaseMetrics(migrated, NOW);
    expect(windows['1h'].latencyMs).toEqual({ count: 2, p50: 100, p95: 300, p99: 300 });
    expect(windows['24h'].latencyMs).toEqual({ count: 3, p50: 200, p95: 300, p99: 300 });
    expect(windows.all.latencyMs).toEqual({ count: 4, p50: 200, p95: 1000, p99: 1000 });
  });

  it('sums tokens per window', () => {
    const { windows } = readDatabaseMetrics(migrated, NOW);
    expect(windows['1h'].tokens).toEqual({ prompt: 30, completion: 15, total: 45 });
    expect(windows['24h'].tokens).toEqual({ prompt: 31, completion: 16, total: 47 });
    expect(windows.all.tokens).toEqual({ prompt: 131, completion: 66, total: 197 });
  });

  it('counts agent requests, retries and failures by kind, unknown kinds and outcomes included', () => {
    const { windows } = readDatabaseMetrics(migrated, NOW);
    expect(windows['1h'].requests).toEqual({ attempts: 4, replied: 2, retries: 2, failures: 2, failuresByKind: { timeout: 1, connection: 1 }, stopReasons: {} });
    expect(windows['24h'].requests).toEqual({ attempts: 6, replied: 3, retries: 2, failures: 3, failuresByKind: { timeout: 1, connection: 1, http_4xx: 1 }, stopReasons: {} });
    expect(windows.all.requests).toEqual({
      attempts: 10,
      replied: 4,
      retries: 3,
      failures: 6,
      failuresByKind: { timeout: 1, connection: 1, http_4xx: 1, rate_limited: 1, something_new: 1, unknown: 1 },
      stopReasons: { max_steps: 1 },
    });
  });

  it('counts delivery failures and reads the queue', () => {
    const metrics = readDatabaseMetrics(migrated, NOW);
    expect([metrics.windows['1h'].deliveryFailures, metrics.windows['24h'].deliveryFailures, metrics.windows.all.deliveryFailures]).toEqual([0, 1, 1]);
    expect(metrics.queue).toEqual({ pending: 1, processing: 0, failed: 2, retrying: 1, oldestPendingAgeS: 1200 });
    expect(metrics.schemaVersion).toBe(SCHEMA_VERSION);
  });

  it('says an agent without traffic has zeros and no quantiles', async () => {
    const empty = join(await tempDir('metrics-empty'), 'animus.db');
    openDatabase(empty, { create: true }).close();
    const { windows, queue } = readDatabaseMetrics(empty, NOW);
    expect(windows.all).toEqual({
      messagesIn: 0,
      messagesOut: 0,
      latencyMs: { count: 0, p50: null, p95: null, p99: null },
      tokens: { prompt: 0, completion: 0, total: 0 },
      requests: { attempts: 0, replied: 0, retries: 0, failures: 0, failuresByKind: {}, stopReasons: {} },
      deliveryFailures: 0,
    });
    expect(queue.oldestPendingAgeS).toBeNull();
  });
});

describe('readDatabaseMetrics on a Broca-made database', () => {
  it('counts what Broca keeps and leaves the rest absent, not zero, without changing the file', async () => {
    const dir = await tempDir('metrics-broca');
    const path = join(dir, 'sanctum.db');
    makeBrocaDatabase(path);
    const before = createHash('sha256').update(await readFile(path)).digest('hex');
    const metrics = readDatabaseMetrics(path, Date.now());
    for (const window of ['1h', '24h', 'all'] as const) {
      expect(metrics.windows[window]).toMatchObject({ messagesIn: 12, messagesOut: 2, latencyMs: null, tokens: null, requests: null, deliveryFailures: null });
    }
    expect(metrics.queue).toMatchObject({ pending: 4, processing: 2, failed: 2, retrying: 0 });
    expect(metrics.schemaVersion).toBe(0);
    expect(createHash('sha256').update(await readFile(path)).digest('hex')).toBe(before);
    expect(await readdir(dir)).toEqual(['sanctum.db']);
  });

  it('fails with a one-line error on a file that is not a database', async () => {
    const path = join(await tempDir('metrics-bad'), 'animus.db');
    await import('node:fs/promises').then((fs) => fs.writeFile(path, 'not a database at all, just some text'.repeat(200)));
    expect(() => readDatabaseMetrics(path, NOW)).toThrow(/not a SQLite database or is corrupt/);
  });
});

describe('percentileOfSorted', () => {
  it.each([
    [[], 50, null],
    [[7], 99, 7],
    [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50, 5],
    [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95, 10],
    [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90, 9],
  ])('%j p%d = %s', (list, p, expected) => {
    expect(percentileOfSorted(list, p)).toBe(expected);
  });
});

describe('collectMetrics with a cache', () => {
  it('serves an unchanged database from its digest, cutting the windows at the new time, and reads a written one again', async () => {
    const { deployTestAgent } = await import('../helpers/agents.js');
    const { collectMetrics } = await import('../../src/metrics/collect.js');
    const home = join(await tempDir('metrics-cache'), 'home');
    const agent = await deployTestAgent(home);
    const start = Date.now();
    writeTraffic(agent.paths.db, [{ agoMs: 58 * MIN, latencyMs: 100, tokens: { prompt: 1, completion: 1 } }, { agoMs: 5 * MIN, latencyMs: 900, tokens: { prompt: 2, completion: 2 } }], start);
    const cache = new MetricsCache();
    // Read a little after the write, so the file counts as settled (see SETTLE_MS).
    const first = await collectMetrics({ home, cache, settleMs: 0, now: start + 3000 });
    expect(first[0]!.database!.windows['1h'].messagesIn).toBe(2);
    expect(cache.get(agent.id)?.key).toEqual(expect.any(String));

    // 4 minutes on (within the digest's life), nothing written: the 58-minute-old message has left the last hour.
    const later = start + 4 * MIN;
    const cached = await collectMetrics({ home, cache, settleMs: 0, now: later });
    expect(cache.get(agent.id)?.digest.readAt).toBe(start + 3000);
    const fresh = await collectMetrics({ home, now: later });
    expect(cached[0]!.database).toEqual(fresh[0]!.database);
    expect(cached[0]!.database!.windows['1h']).toMatchObject({ messagesIn: 1, latencyMs: { count: 1, p50: 900 } });

    writeTraffic(agent.paths.db, [{ agoMs: 0, latencyMs: 300, tokens: { prompt: 3, completion: 3 } }], later);
    const written = await collectMetrics({ home, cache, settleMs: 0, now: later + 3000 });
    expect(written[0]!.database!.windows['1h']).toMatchObject({ messagesIn: 2, latencyMs: { count: 2, p50: 300 } });
  });
});
