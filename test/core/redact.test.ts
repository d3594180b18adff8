import { describe, expect, it } from 'vitest';
import { isSecretKey, looksSecret, redactText, secretValues } from '../../src/core/redact.js';

describe('redaction', () => {
  it.each([
    ['AGENT_API_KEY', true],
    ['TELEGRAM_BOT_TOKEN', true],
    ['TELEGRAM_API_HASH', true],
    ['TELEGRAM_SESSION_STRING', true],
    ['ANIMUS_BACKUP_PASSPHRASE', true],
    ['AGENT_ID', false],
    ['AGENT_ENDPOINT', false],
    ['TELEGRAM_OWNER_ID', false],
  ])('%s is secret: %s', (key, secret) => expect(isSecretKey(key)).toBe(secret));

  it('removes every occurrence of each secret, including inside URLs', () => {
    const token = '7012398745:AAFq3kz9Xb2LwPm4Rt7Yc1Vn8Hd6Js5Ge0Q';
    const text = `POST https://api.telegram.org/bot${token}/sendMessage failed; token ${token}; key sk-let-abcdef`;
    expect(redactText(text, [token, 'sk-let-abcdef'])).toBe('POST https://api.telegram.org/bot[REDACTED]/sendMessage failed; token [REDACTED]; key [REDACTED]');
  });

  it('leaves values too short to be secrets alone (an empty or 1-char value would redact everything)', () => {
    expect(redactText('ok 1 true', ['', '1', 'true'])).toBe('ok 1 true');
  });
});

describe('redaction by shape, whatever key a value sits under', () => {
  const BOT = '7012398745:AAFq3kz9Xb2LwPm4Rt7Yc1Vn8Hd6Js5Ge0Q';
  const SESSION = `1${'BQAbCdEf0123456789+/'.repeat(17)}xYz=`;
  it.each([
    ['a Letta key', 'key sk-let-4f9a1c2e8b7d in a message', 'key [REDACTED] in a message'],
    ['another sk- key', 'openai sk-proj-Zq81nVb7Ka02Lm', 'openai [REDACTED]'],
    ['a bot token pasted into TELEGRAM_OWNER_ID', `TELEGRAM_OWNER_ID "${BOT}" is not a numeric Telegram id`, 'TELEGRAM_OWNER_ID "[REDACTED]" is not a numeric Telegram id'],
    ['a bot token inside a Bot API URL', `GET https://api.telegram.org/bot${BOT}/getUpdates failed`, 'GET https://api.telegram.org/bot[REDACTED]/getUpdates failed'],
    ['a string session', `session=${SESSION} saved`, 'session=[REDACTED] saved'],
  ])('%s', (_name, text, expected) => expect(redactText(text)).toBe(expected));

  it('leaves ids, times and ordinary words alone', () => {
    const text = '{"time":"2026-12-01T07:35:04.123Z","agent":"agent-721679f6-c8af-4e01-8677-dc042dc80368","chat":123456789,"msg":"task-runner ok"}';
    expect(redactText(text)).toBe(text);
  });

  it('collects the values of secret-named keys and of secret-shaped values', () => {
    expect(secretValues({ AGENT_API_KEY: 'sk-let-4f9a1c2e8b7d', TELEGRAM_OWNER_ID: BOT, AGENT_ID: 'agent-1', EMPTY_TOKEN: '' }).sort()).toEqual([BOT, 'sk-let-4f9a1c2e8b7d'].sort());
    expect(looksSecret('12345')).toBe(false);
  });
});
