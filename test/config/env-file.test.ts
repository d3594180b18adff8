import { describe, expect, it } from 'vitest';
import { parse } from 'dotenv';
import { errorOf } from '../helpers/errors.js';
import { checkEnv, formatEnvValue, parseEnv, parseEnvAssignment, setEnvValue } from '../../src/config/env-file.js';

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
});
