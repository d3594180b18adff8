import { describe, expect, it } from 'vitest';
import { isSecretKey, redactText } from '../../src/core/redact.js';

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
