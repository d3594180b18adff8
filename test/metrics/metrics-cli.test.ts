import { copyFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { makeBrocaDatabase } from '../helpers/broca.js';
import { json, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';
import { writeTraffic } from '../helpers/traffic.js';
import { writeFile } from 'node:fs/promises';
import type { AgentMetrics } from '../../src/metrics/types.js';

// An independent parser of the text exposition format (not prom-client, which wrote it).
const parsePrometheus = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => Array<{ name: string; type: string; help: string; metrics: Array<{ value: string; labels?: Record<string, string> }> }>;

const MIN = 60_000;
let home: string;
let live: string;
let broca: string;

beforeAll(async () => {
  home = join(await tempDir('metrics-cli'), 'home');
  const a = await deployTestAgent(home);
  live = a.id;
  const settings = JSON.parse(await import('node:fs/promises').then((fs) => fs.readFile(a.paths.settings, 'utf8')));
  settings.agent = { ...settings.agent, name: 'Ada "the helper"' };
  await writeFile(a.paths.settings, JSON.stringify(settings, null, 2), { mode: 0o600 });
  writeTraffic(a.paths.db, [
    { agoMs: 5 * MIN, latencyMs: 400, tokens: { prompt: 30, completion: 12 }, requests: [{ outcome: 'replied', stopReason: 'end_turn' }] },
    { agoMs: 15 * MIN, latencyMs: 1600, tokens: { prompt: 50, completion: 8 }, requests: [{ outcome: 'retry', errorKind: 'http_5xx', httpStatus: 502 }, { outcome: 'replied', stopReason: 'end_turn' }] },
    { agoMs: 25 * MIN, requests: [{ outcome: 'retry', errorKind: 'timeout' }], status: 'pending' },
    { agoMs: 3 * 60 * MIN, requests: [{ outcome: 'failed', errorKind: 'stop_reason', stopReason: 'insufficient_credits' }], status: 'failed' },
  ]);
  const b = await deployTestAgent(home);
  broca = b.id;
  await rm(b.paths.db, { force: true });
  const made = join(await tempDir('metrics-broca'), 'sanctum.db');
  makeBrocaDatabase(made);
  await copyFile(made, b.paths.db);
}, 120_000);

describe('animus metrics', () => {
  it('prints one family per metric, labelled with agent and name, with the values of each database', async () => {
    const result = await runCli(['metrics'], { home });
    expect(result.code, result.stderr).toBe(0);
    const families = new Map(parsePrometheus(result.stdout).map((f) => [f.name, f]));
    const sample = (family: string, agent: string, labels: Record<string, string> = {}) => {
      const found = families.get(family)?.metrics.filter((m) => m.labels?.agent === agent && Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
      return found && found.length === 1 ? Number(found[0]!.value) : found?.length ? Number.NaN : undefined;
    };
    expect(families.get('animus_agent_messages_received_total')?.type).toBe('COUNTER');
    expect(families.get('animus_agent_reply_latency_seconds')?.type).toBe('GAUGE');
    expect(families.get('animus_agent_messages_received_total')?.metrics.find((m) => m.labels?.agent === live)?.labels).toEqual({ agent: live, name: 'Ada "the helper"' });

    expect(sample('animus_agent_messages_received_total', live)).toBe(4);
    expect(sample('animus_agent_messages_replied_total', live)).toBe(2);
    expect(sample('animus_agent_reply_latency_seconds', live, { window: '1h', quantile: '0.5' })).toBe(0.4);
    expect(sample('animus_agent_reply_latency_seconds', live, { window: '24h', quantile: '0.99' })).toBe(1.6);
    expect(sample('animus_agent_tokens_total', live, { type: 'prompt' })).toBe(80);
    expect(sample('animus_agent_tokens_total', live, { type: 'total' })).toBe(100);
    expect(sample('animus_agent_requests_total', live)).toBe(5);
    expect(sample('animus_agent_request_retries_total', live)).toBe(2);
    expect(sample('animus_agent_request_failures_total', live, { kind: 'http_5xx' })).toBe(1);
    expect(sample('animus_agent_request_failures_total', live, { kind: 'timeout' })).toBe(1);
    expect(sample('animus_agent_request_failures_total', live, { kind: 'stop_reason' })).toBe(1);
    expect(sample('animus_agent_stop_reasons_total', live, { reason: 'insufficient_credits' })).toBe(1);
    expect(sample('animus_agent_queue_items', live, { status: 'pending' })).toBe(1);
    expect(sample('animus_agent_queue_items', live, { status: 'failed' })).toBe(1);
    expect(sample('animus_agent_queue_oldest_pending_age_seconds', live)).toBeGreaterThanOrEqual(25 * 60);
    expect(sample('animus_agent_up', live)).toBe(0);

    // The Broca-made database keeps messages and the queue, not timing: those samples are absent, not zero.
    expect(sample('animus_agent_messages_received_total', broca)).toBe(12);
    expect(sample('animus_agent_messages_replied_total', broca)).toBe(2);
    expect(sample('animus_agent_queue_items', broca, { status: 'pending' })).toBe(4);
    for (const family of ['animus_agent_reply_latency_seconds', 'animus_agent_tokens_total', 'animus_agent_requests_total', 'animus_agent_delivery_failures_total']) {
      expect(families.get(family)?.metrics.some((m) => m.labels?.agent === broca), family).toBe(false);
    }
    expect(Number(families.get('animus_agents')?.metrics[0]?.value)).toBe(2);
  });

  it('--json gives every agent its windows, absent numbers as null', async () => {
    const result = await runCli(['metrics', '--json'], { home });
    expect(result.code, result.stderr).toBe(0);
    const agents = json<AgentMetrics[]>(result);
    const a = agents.find((x) => x.id === live)!;
    expect(a.database?.windows['1h']).toMatchObject({ messagesIn: 3, messagesOut: 2, latencyMs: { count: 2, p50: 400, p95: 1600 } });
    expect(a.database?.windows['24h'].requests?.failuresByKind).toEqual({ http_5xx: 1, timeout: 1, stop_reason: 1 });
    const b = agents.find((x) => x.id === broca)!;
    expect(b.database?.windows.all).toMatchObject({ latencyMs: null, tokens: null, requests: null, deliveryFailures: null });
    expect(b.process.state).toBe('not-registered');
  });

  it('--out writes the file for the textfile collector (0644), and names the fix for a folder that is missing', async () => {
    const dir = await tempDir('metrics-out');
    const file = join(dir, 'animus.prom');
    const ok = await runCli(['metrics', '--out', file], { home });
    expect(ok.code, ok.stderr).toBe(0);
    const { readFile, stat } = await import('node:fs/promises');
    expect(parsePrometheus(await readFile(file, 'utf8')).some((f) => f.name === 'animus_agent_up')).toBe(true);
    expect((await stat(file)).mode & 0o777).toBe(0o644);
    const bad = await runCli(['metrics', '--out', join(dir, 'missing', 'animus.prom')], { home });
    expect(bad.code).toBe(6);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/cannot write .*missing\/animus\.prom \(ENOENT\): check that its folder exists/);
  });

  it('explains the textfile collector in --help', async () => {
    const result = await runCli(['metrics', '--help'], { home });
    expect(result.stdout).toContain('textfile collector');
    expect(result.stdout).toContain('--out');
  });
});
