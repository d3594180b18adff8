import { ENV_FILE, type AgentPaths } from '../home/layout.js';
import { writeAgentFileAtomic } from '../core/agent-fs.js';
import { AnimusError } from '../core/errors.js';
import { isSecretKey } from '../core/redact.js';
import { REQUIRED_LIVE_KEYS, isPlaceholder, parseEnv, setEnvValue, validateEnvKey } from '../config/env-file.js';
import { readEnvText } from './agent-files.js';
import { withAgentLock } from './operation-lock.js';

/**
 * `animus env`: an agent's .env changed one variable at a time, under the agent's lock,
 * written atomically at 0600 (never a half-written or world-readable file), and checked
 * the way the runtime will read it: the result must parse, and must give back exactly
 * the value set. A running instance reads .env at start only: changes apply at restart.
 */

/** Keys whose placeholder values the runtime refuses at start (runtime/config.ts). */
const CHECKED_KEYS = new Set<string>([...REQUIRED_LIVE_KEYS, 'TELEGRAM_BOT_TOKEN', 'TELEGRAM_API_ID', 'TELEGRAM_API_HASH', 'TELEGRAM_OWNER_ID']);

export const REDACTED = '[REDACTED]';

export interface EnvChange {
  agent: string;
  key: string;
  /** Whether the file changed (setting the same value, or unsetting a missing key, does not). */
  changed: boolean;
  /** Whether the key was set before. */
  existed: boolean;
}

export interface EnvEntry {
  key: string;
  /** The value, or [REDACTED] for a secret-looking key. */
  value: string;
  secret: boolean;
}

export function validateEnvValue(key: string, value: string): void {
  if (/[\r\n\0]/.test(value)) throw new AnimusError('EUSAGE', `the value of ${key} contains a line break or NUL: .env values are one line`);
  if (value.length > 64 * 1024) throw new AnimusError('EUSAGE', `the value of ${key} is ${value.length} characters long: .env values are at most 65536`);
  if ((CHECKED_KEYS.has(key) || isSecretKey(key)) && isPlaceholder(value)) {
    throw new AnimusError('EUSAGE', `the value of ${key} looks like a placeholder: the runtime refuses it at start; pass the real value`);
  }
}

export async function setAgentEnv(paths: AgentPaths, key: string, value: string, command = 'env set'): Promise<EnvChange> {
  validateEnvKey(key);
  validateEnvValue(key, value);
  return withAgentLock(paths, { command }, async () => {
    const text = await readEnvText(paths);
    // A malformed .env is refused with its line: the result would be unreadable too.
    const before = parseEnv(text, paths.env);
    const next = setEnvValue(text, key, value);
    const after = parseEnv(next, paths.env);
    if (after[key] !== value) throw new AnimusError('EUSAGE', `the value of ${key} would not read back as given from ${paths.env}: nothing was changed`);
    const changed = next !== text;
    if (changed) await writeAgentFileAtomic(paths.dir, ENV_FILE, next);
    return { agent: paths.agent.id, key, changed, existed: key in before };
  });
}

export async function unsetAgentEnv(paths: AgentPaths, key: string, command = 'env unset'): Promise<EnvChange> {
  validateEnvKey(key);
  return withAgentLock(paths, { command }, async () => {
    const text = await readEnvText(paths);
    const before = parseEnv(text, paths.env);
    const assignment = new RegExp(`^\\s*(?:export\\s+)?${key}\\s*=`);
    const next = text
      .split('\n')
      .filter((line) => !assignment.test(line))
      .join('\n');
    if (next === text) return { agent: paths.agent.id, key, changed: false, existed: key in before };
    if (key in parseEnv(next, paths.env)) throw new AnimusError('EBADENV', `${key} in ${paths.env} spans several lines: remove it by hand; nothing was changed`);
    await writeAgentFileAtomic(paths.dir, ENV_FILE, next);
    return { agent: paths.agent.id, key, changed: true, existed: true };
  });
}

/** The variables in file order, secret-looking values redacted. */
export async function showAgentEnv(paths: AgentPaths): Promise<EnvEntry[]> {
  const env = parseEnv(await readEnvText(paths), paths.env);
  return Object.entries(env).map(([key, value]) => ({ key, value: isSecretKey(key) && value !== '' ? REDACTED : value, secret: isSecretKey(key) }));
}
