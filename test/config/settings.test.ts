import { describe, expect, it } from 'vitest';
import { errorOf } from '../helpers/errors.js';
import { defaultSettings, parseSettingsJson, SETTINGS_FIELDS, setSetting, validateSettings } from '../../src/config/settings.js';

const ID = 'agent-721679f6-c8af-4e01-8677-dc042dc80368';

describe('settings schema', () => {
  it('round-trips the defaults', () => {
    const settings = defaultSettings({ agentId: ID, mode: 'echo' });
    expect(validateSettings(JSON.parse(JSON.stringify(settings)), 'x')).toEqual(settings);
  });

  it('fills missing keys with defaults so older files stay valid', () => {
    const settings = validateSettings({ agent: { id: ID }, message_mode: 'listen' }, 'x');
    expect(settings.message_mode).toBe('listen');
    expect(settings.max_retries).toBe(defaultSettings({ agentId: ID }).max_retries);
    expect(settings.plugins.local.enabled).toBe(true);
  });

  it('has a field for every leaf of the defaults, and no field without a default', () => {
    const leaves: string[] = [];
    const walk = (value: unknown, prefix: string) => {
      if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(v, prefix ? `${prefix}.${k}` : k);
      else leaves.push(prefix);
    };
    walk(defaultSettings({ agentId: ID }), '');
    expect(leaves.sort()).toEqual(SETTINGS_FIELDS.map((f) => f.path).sort());
  });

  it.each([
    [{ agent: { id: ID }, message_mode: 'shout' }, /message_mode must be one of echo, listen, live/],
    [{ agent: { id: ID }, max_retries: -1 }, /max_retries must be a whole number from 0 to 100/],
    [{ agent: { id: ID }, max_retries: 1.5 }, /max_retries must be a whole number/],
    [{ agent: { id: ID }, queue_refresh: '5' }, /queue_refresh must be a number/],
    [{ agent: { id: ID }, debug_mode: 'yes' }, /debug_mode must be true or false/],
    [{ agent: { id: ID }, message_processing: { mode: 'live' } }, /unknown key message_processing/],
    [{ agent: { id: ID }, plugins: { telegram: { enabled: true } } }, /unknown key plugins.telegram/],
    [{ agent: { id: ID }, plugins: [] }, /plugins \(must be an object\)/],
    [{ message_mode: 'live' }, /agent.id is missing/],
    [[], /must hold a JSON object/],
  ])('refuses %j', (raw, message) => {
    const error = errorOf(() => validateSettings(raw, 'settings.json'));
    expect(error.code).toBe('EBADSETTINGS');
    expect(error.message).toMatch(message);
  });

  it('reports every problem at once, on one line', () => {
    const error = errorOf(() => validateSettings({ agent: { id: ID }, message_mode: 'x', max_retries: 'y', extra: 1 }, 'settings.json'));
    expect(error.message).toMatch(/message_mode.*max_retries.*unknown key extra/);
    expect(error.message).not.toContain('\n');
  });

  it('names the file and the fix for malformed JSON', () => {
    const error = errorOf(() => parseSettingsJson('{"agent": ', '/a/settings.json'));
    expect(error.code).toBe('EBADSETTINGS');
    expect(error.message).toMatch(/^\/a\/settings.json is not valid JSON/);
  });

  describe('setSetting', () => {
    const base = defaultSettings({ agentId: ID });
    it.each([
      ['message_mode', 'listen', 'listen'],
      ['max_retries', '7', 7],
      ['queue_refresh', '0.5', 0.5],
      ['debug_mode', 'on', true],
      ['plugins.telegram_bot.enabled', 'false', false],
      ['agent.name', 'Support bot', 'Support bot'],
    ])('%s = %s', (path, text, expected) => {
      const next = setSetting(base, path, text);
      expect(path.split('.').reduce<any>((o, k) => o[k], next)).toEqual(expected);
      expect(base).toEqual(defaultSettings({ agentId: ID }));
    });

    it.each([
      ['message_mode', 'shout', /expected one of echo, listen, live/],
      ['max_retries', 'many', /expected a whole number/],
      ['max_retries', '1000', /expected a whole number from 0 to 100/],
      ['debug_mode', 'maybe', /true or false/],
      ['nope', '1', /unknown setting "nope"/],
      ['agent.id', ID, /cannot be changed/],
    ])('refuses %s = %s', (path, text, message) => {
      const error = errorOf(() => setSetting(base, path, text));
      expect(error.code).toBe('EUSAGE');
      expect(error.message).toMatch(message);
    });
  });
});
