import { describe, expect, it } from 'vitest';
import { parse } from 'dotenv';
import { errorOf } from '../helpers/errors.js';
import { checkEnv, formatEnvValue, isPlaceholder, parseEnv, parseEnvAssignment, setEnvValue } from '../../src/config/env-file.js';

describe('.env files', () => {
  it('parses assignments, comments, export and quotes', () => {
    const env = parseEnv('# c\nA=1\nexport B="two words"\nC=\'x#y\'\n\nD=\n', '.env');
    expect(env).toEqual({ A: '1', B: 'two words', C: 'x#y', D: '' });
  });

  it.each([
    ['A=1\nthis is not an assignment\n', /line 2 is not KEY=VALUE/],
    ['A=1\n1BAD=2\n', /line 2 is not KEY=VALUE/],
    ['A="unclosed\n', /unclosed " quote/],
  ])('refuses %j', (text, message) => {
    const error = errorOf(() => parseEnv(text, '/x/.env'));
    expect(error.code).toBe('EBADENV');
    expect(error.message).toMatch(message);
  });

  it.each(['plain', 'https://api.letta.com/v1', 'sk-let-abc_123', 'two words', 'a#b', "it's", 'x=y&z', ''])(
    'formats %j so dotenv reads it back unchanged',
    (value) => {
      expect(parse(`K=${formatEnvValue('K', value)}\n`).K).toBe(value);
    },
  );

  it('refuses values it cannot store faithfully', () => {
    expect(errorOf(() => formatEnvValue('K', 'a\nb')).message).toMatch(/line break/);
    expect(errorOf(() => formatEnvValue('K', `a'b"c`)).message).toMatch(/both quote kinds/);
  });

  it('sets a value without touching any other line', () => {
    const text = '# head\nA=1\n# TELEGRAM_BOT_TOKEN=\nB=2 # trailing\n';
    expect(setEnvValue(text, 'A', 'new')).toBe('# head\nA=new\n# TELEGRAM_BOT_TOKEN=\nB=2 # trailing\n');
    expect(setEnvValue(text, 'TELEGRAM_BOT_TOKEN', '123:abc')).toBe('# head\nA=1\nTELEGRAM_BOT_TOKEN=123:abc\nB=2 # trailing\n');
    expect(setEnvValue(text, 'C', '3')).toBe(`${text}C=3\n`);
    expect(setEnvValue('A=1', 'C', '3')).toBe('A=1\nC=3\n');
  });

  it('parses --env assignments', () => {
    expect(parseEnvAssignment('A=b=c')).toEqual(['A', 'b=c']);
    expect(errorOf(() => parseEnvAssignment('novalue')).message).toMatch(/not KEY=VALUE/);
    expect(errorOf(() => parseEnvAssignment('9X=1')).message).toMatch(/not a valid variable name/);
  });

  it('requires the agent keys in live mode only, and refuses placeholders', () => {
    expect(checkEnv({ AGENT_ID: 'agent-x' }, 'echo')).toEqual([]);
    expect(checkEnv({ AGENT_ID: 'agent-x' }, 'live').map((p) => p.key)).toEqual(['AGENT_ENDPOINT', 'AGENT_API_KEY']);
    expect(checkEnv({ AGENT_ID: 'a', AGENT_ENDPOINT: 'https://your-letta-instance.com', AGENT_API_KEY: 'your_agent_specific_api_key' }, 'live')).toEqual([
      { key: 'AGENT_ENDPOINT', problem: 'still holds a placeholder value' },
      { key: 'AGENT_API_KEY', problem: 'still holds a placeholder value' },
    ]);
  });

  // Broca's rule, read from common/config.py: trimmed, lower-cased, substring of its
  // patterns or exactly one of its known values.
  it.each([
    ['your_letta_api_key_here', true],
    ['YOUR-KEY', true],
    ['key_here', true],
    ['token-here', true],
    ['PlaceHolder', true],
    ['changeme', true],
    ['https://api.example.com', true],
    ['sk-test-4f9a1c2e', true],
    ['test_token', true],
    ['  TEST  ', true],
    ['123456', true],
    ['sk-let-4f9a1c2e8b7d', false],
    ['7012398745:AAFq3kz9Xb2LwPm4Rt7Yc1Vn8Hd6Js5Ge0Q', false],
    ['1234567:AAFq3kz9Xb2LwPm4Rt7Yc1Vn8Hd6Js5Ge0Q', false],
    ['attestation', false],
    ['https://api.letta.com', false],
    ['', false],
  ])('isPlaceholder(%j) is %s, as in Broca', (value, expected) => {
    expect(isPlaceholder(value)).toBe(expected);
  });

  it('refuses localhost as a whole AGENT_ENDPOINT only, as Broca does', () => {
    expect(isPlaceholder('localhost', 'AGENT_ENDPOINT')).toBe(true);
    expect(isPlaceholder('localhost', 'AGENT_API_KEY')).toBe(false);
    expect(isPlaceholder('http://localhost:8283', 'AGENT_ENDPOINT')).toBe(false);
    expect(checkEnv({ AGENT_ID: 'a', AGENT_ENDPOINT: 'https://api.letta.com', AGENT_API_KEY: 'sk-test-0a1b2c' }, 'live')).toEqual([{ key: 'AGENT_API_KEY', problem: 'still holds a placeholder value' }]);
  });
});
