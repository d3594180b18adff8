import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../../src/runtime/backoff.js';
import { CircuitBreaker, type CircuitState } from '../../src/runtime/circuit-breaker.js';
import { extractReply, formatAgentInput, splitMessage } from '../../src/runtime/format.js';
import { createLogger } from '../../src/runtime/logger.js';

describe('formatAgentInput', () => {
  it.each([
    [{ username: 'alice', displayName: 'A', platformUserId: '123' }, '[Username: @alice, Telegram ID: 123] hi'],
    [{ username: '@bob', displayName: null, platformUserId: '9' }, '[Username: @bob, Telegram ID: 9] hi'],
    [{ username: null, displayName: 'Carol C', platformUserId: '5' }, '[Username: Carol C, Telegram ID: 5] hi'],
    [{ username: 'dan', displayName: null, platformUserId: '77', platform: 'telegram_user' }, '[Username: @dan, Telegram ID: 77] hi'],
    [{ username: 'root', displayName: 'root (animus send)', platformUserId: 'root', platform: 'local' }, '[Username: @root, Local user: root] hi'],
  ])('%j', (sender, expected) => expect(formatAgentInput(sender, 'hi')).toBe(expected));
});

describe('splitMessage', () => {
  it('keeps short text whole and splits long text at boundaries within the limit', () => {
    expect(splitMessage('short')).toEqual(['short']);
    const para = `${'a'.repeat(3000)}\n\n${'b'.repeat(3000)}`;
    expect(splitMessage(para)).toEqual(['a'.repeat(3000), 'b'.repeat(3000)]);
    const words = Array.from({ length: 2000 }, (_, i) => `w${i}`).join(' ');
    const chunks = splitMessage(words, 100);
    expect(chunks.every((c) => c.length <= 100)).toBe(true);
    expect(chunks.join(' ')).toBe(words);
    const solid = 'x'.repeat(9000);
    expect(splitMessage(solid).map((c) => c.length)).toEqual([4096, 4096, 808]);
    const emoji = '😀'.repeat(3000);
    expect(splitMessage(emoji).join('')).toBe(emoji);
    expect(splitMessage(emoji).every((c) => !/[\ud800-\udbff]$/.test(c))).toBe(true);
  });
});

describe('extractReply', () => {
  it('joins every assistant_message, string or text parts, skipping reasoning and tools', () => {
    expect(
      extractReply([
        { message_type: 'reasoning_message', reasoning: 'hmm' },
        { message_type: 'assistant_message', content: 'one' },
        { message_type: 'tool_call_message', tool_call: {} },
        { message_type: 'assistant_message', content: [{ type: 'text', text: 'two' }, { type: 'image' }, { type: 'text', text: '!' }] },
      ]),
    ).toBe('one\n\ntwo!');
    expect(extractReply([{ message_type: 'reasoning_message' }])).toBe('');
  });
});

describe('backoffDelay', () => {
  it('doubles per attempt with jitter between half and all, capped', () => {
    const opts = { baseMs: 1000, maxMs: 10_000 };
    expect(backoffDelay(1, { ...opts, random: () => 0 })).toBe(500);
    expect(backoffDelay(1, { ...opts, random: () => 1 })).toBe(1000);
    expect(backoffDelay(3, { ...opts, random: () => 1 })).toBe(4000);
    expect(backoffDelay(10, { ...opts, random: () => 1 })).toBe(10_000);
    expect(backoffDelay(10, { ...opts, random: () => 0 })).toBe(5000);
  });
});

describe('CircuitBreaker', () => {
  it('opens after N failures, probes once after the cooldown, closes on success and backs off on a failed probe', () => {
    let now = 0;
    const states: CircuitState[] = [];
    const breaker = new CircuitBreaker({ threshold: 3, cooldownMs: 1000, maxCooldownMs: 3000, now: () => now, onChange: (s) => states.push(s) });
    breaker.failure();
    breaker.failure();
    expect(breaker.allow()).toBe(true);
    breaker.failure();
    expect(breaker.state).toBe('open');
    expect(breaker.allow()).toBe(false);
    now = 1000;
    expect(breaker.allow()).toBe(true);
    expect(breaker.state).toBe('half-open');
    breaker.failure();
    expect(breaker.retryAt).toBe(3000);
    now = 2999;
    expect(breaker.allow()).toBe(false);
    now = 3000;
    expect(breaker.allow()).toBe(true);
    breaker.success();
    expect(states).toEqual(['open', 'half-open', 'open', 'half-open', 'closed']);
  });
});

describe('logger', () => {
  it('writes one JSON line per event at or above its level, with secrets redacted', () => {
    const lines: string[] = [];
    const logger = createLogger({ agent: 'agent-x', level: 'info', secrets: ['7012398745:AAFq3kz9Xb2LwPm4Rt7Yc1Vn8Hd6Js5Ge0Q', 'short'], write: (l) => lines.push(l) });
    logger.debug('hidden');
    logger.warn('fetch failed for https://api.telegram.org/bot7012398745:AAFq3kz9Xb2LwPm4Rt7Yc1Vn8Hd6Js5Ge0Q/getUpdates', { item: 4, error: 'token 7012398745:AAFq3kz9Xb2LwPm4Rt7Yc1Vn8Hd6Js5Ge0Q' });
    expect(lines).toHaveLength(1);
    expect(lines[0]!.endsWith('\n')).toBe(true);
    const record = JSON.parse(lines[0]!);
    expect(record).toMatchObject({ level: 'warn', agent: 'agent-x', item: 4, msg: 'fetch failed for https://api.telegram.org/bot[REDACTED]/getUpdates', error: 'token [REDACTED]' });
    expect(Object.keys(record).slice(0, 3)).toEqual(['time', 'level', 'agent']);
  });
});
