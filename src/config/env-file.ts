import { AnimusError } from '../core/errors.js';
import { parseEnvText } from './env-syntax.js';

/**
 * An agent's .env: the runtime's only source of secrets. Values are read as dotenv
 * reads them (env-syntax.ts); this module adds what dotenv forgives silently: lines
 * that are not assignments, which usually mean a broken edit.
 */

export type EnvMap = Record<string, string>;

export const REQUIRED_LIVE_KEYS = ['AGENT_ID', 'AGENT_ENDPOINT', 'AGENT_API_KEY'] as const;

/**
 * Broca's placeholder rule (common/config.py, validate_environment_variables): the
 * value, trimmed and lower-cased, contains one of these, or is exactly one of the
 * known placeholder values below. `test` and `123456` count only as whole values
 * (a key `sk-test-…` is caught by `test-`; a token `1234567:AB…` is not a placeholder).
 */
const PLACEHOLDER_PARTS = ['your_', 'your-', '_here', '-here', 'placeholder', 'changeme', 'example', 'test_', 'test-'] as const;
const PLACEHOLDER_VALUES = new Set(['test', '123456']);
/** Broca also refuses this endpoint as a whole value. */
const PLACEHOLDER_ENDPOINTS = new Set(['localhost']);

const ASSIGNMENT = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/;
const KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Whether Broca would refuse this value at start as a placeholder; `key` adds that variable's own known values. */
export function isPlaceholder(value: string, key?: string): boolean {
  const text = value.trim().toLowerCase();
  if (text === '') return false;
  if (PLACEHOLDER_VALUES.has(text) || (key === 'AGENT_ENDPOINT' && PLACEHOLDER_ENDPOINTS.has(text))) return true;
  return PLACEHOLDER_PARTS.some((part) => text.includes(part));
}

/** Parses .env text; throws EBADENV naming the first bad line. */
export function parseEnv(text: string, source: string): EnvMap {
  const lines = text.split(/\r?\n/);
  let openQuote: string | undefined;
  for (const [index, line] of lines.entries()) {
    if (openQuote) {
      if (line.includes(openQuote)) openQuote = undefined;
      continue;
    }
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const match = ASSIGNMENT.exec(line);
    if (!match) {
      throw new AnimusError('EBADENV', `${source} line ${index + 1} is not KEY=VALUE: fix or comment out that line`, { detail: { line: index + 1 } });
    }
    const value = match[2]!;
    const quote = value[0];
    if ((quote === '"' || quote === "'" || quote === '`') && value.indexOf(quote, 1) === -1) openQuote = quote;
  }
  if (openQuote) throw new AnimusError('EBADENV', `${source} has an unclosed ${openQuote} quote: close it or remove the line`);
  return parseEnvText(text);
}

/** Formats one value so that dotenv reads back exactly the same string. */
export function formatEnvValue(key: string, value: string): string {
  if (/[\r\n]/.test(value)) throw new AnimusError('EUSAGE', `value of ${key} contains a line break: .env values must be one line`);
  if (/^[A-Za-z0-9_\-.:/@+=,%~]*$/.test(value)) return value;
  if (!value.includes("'")) return `'${value}'`;
  if (!value.includes('"') && !value.includes('\\')) return `"${value}"`;
  throw new AnimusError('EUSAGE', `value of ${key} contains both quote kinds: .env cannot hold it safely`);
}

export function validateEnvKey(key: string): void {
  if (!KEY.test(key)) throw new AnimusError('EUSAGE', `"${key}" is not a valid variable name: use letters, digits and _ (not starting with a digit)`);
}

/** Parses `KEY=VALUE` from the command line. */
export function parseEnvAssignment(text: string): [string, string] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new AnimusError('EUSAGE', `--env "${text}" is not KEY=VALUE`);
  const key = text.slice(0, eq).trim();
  validateEnvKey(key);
  return [key, text.slice(eq + 1)];
}

/**
 * Sets KEY in .env text and returns the new text: replaces an existing assignment,
 * else uncomments a documented `# KEY=` placeholder, else appends. Every other line,
 * comment and value stays byte for byte.
 */
export function setEnvValue(text: string, key: string, value: string): string {
  validateEnvKey(key);
  const line = `${key}=${formatEnvValue(key, value)}`;
  const lines = text.split('\n');
  const assigned = lines.findIndex((l) => ASSIGNMENT.exec(l)?.[1] === key);
  if (assigned >= 0) {
    lines[assigned] = line;
    return lines.join('\n');
  }
  const placeholder = lines.findIndex((l) => new RegExp(`^#\\s*${key}\\s*=`).test(l));
  if (placeholder >= 0) {
    lines[placeholder] = line;
    return lines.join('\n');
  }
  const body = text === '' || text.endsWith('\n') ? text : `${text}\n`;
  return `${body}${line}\n`;
}

export interface EnvProblem {
  key: string;
  problem: string;
}

/**
 * What keeps an instance from starting: required keys missing or placeholders.
 * Echo and listen never call the agent, so they need only AGENT_ID.
 */
export function checkEnv(env: EnvMap, mode: 'echo' | 'listen' | 'live'): EnvProblem[] {
  const required = mode === 'live' ? REQUIRED_LIVE_KEYS : (['AGENT_ID'] as const);
  const problems: EnvProblem[] = [];
  for (const key of required) {
    const value = env[key];
    if (value === undefined || value.trim() === '') problems.push({ key, problem: 'is missing' });
    else if (isPlaceholder(value, key)) problems.push({ key, problem: 'still holds a placeholder value' });
  }
  return problems;
}
