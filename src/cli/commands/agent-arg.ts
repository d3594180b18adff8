import { AnimusError } from '../../core/errors.js';

/**
 * Commands that act on one agent take it as `--agent <id>` or as their first
 * argument (`animus queue list agent-…`). Agent ids cannot be mistaken for the other
 * arguments (user refs, setting keys), so the first argument is the agent exactly
 * when it looks like one.
 */
const AGENT_LIKE = /^(agent-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function splitAgentArgs(flag: string | undefined, args: readonly string[], usage: string): { agent: string; rest: string[] } {
  const [first, ...others] = args;
  if (flag !== undefined) {
    if (first !== undefined && AGENT_LIKE.test(first.trim())) {
      throw new AnimusError('EUSAGE', `the agent was given twice (--agent ${flag} and ${first}): pass it once; usage: ${usage}`);
    }
    return { agent: flag, rest: [...args] };
  }
  if (first !== undefined && AGENT_LIKE.test(first.trim())) return { agent: first, rest: others };
  throw new AnimusError('EUSAGE', `which agent? pass --agent <id> (or the id as the first argument); usage: ${usage}`);
}

export function expectArgs(rest: readonly string[], names: readonly string[], usage: string, optional = 0): string[] {
  const required = names.length - optional;
  if (rest.length < required) {
    throw new AnimusError('EUSAGE', `missing ${names.slice(rest.length, required).map((n) => `<${n}>`).join(' ')}; usage: ${usage}`);
  }
  if (rest.length > names.length) throw new AnimusError('EUSAGE', `unexpected argument "${rest[names.length]}"; usage: ${usage}`);
  return [...rest];
}

/** `--id 3 --id 4` or `--id 3,4`: positive whole numbers. */
export function parseIds(raw: readonly string[] | undefined, flag = '--id'): number[] {
  const parts = (raw ?? []).flatMap((value) => value.split(',')).map((value) => value.trim()).filter((value) => value !== '');
  return parts.map((part) => {
    if (!/^\d+$/.test(part) || Number(part) < 1 || !Number.isSafeInteger(Number(part))) {
      throw new AnimusError('EUSAGE', `${flag} "${part}" is not an item id: expected a positive whole number (see \`animus queue list\`)`);
    }
    return Number(part);
  });
}

export function parsePositiveInt(raw: string | undefined, flag: string, fallback: number, max = 1_000_000): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isInteger(n) || n < 1 || n > max) {
    throw new AnimusError('EUSAGE', `${flag} "${raw}" is not valid: expected a whole number from 1 to ${max}`);
  }
  return n;
}

export const collect = (value: string, all: string[] | undefined): string[] => [...(all ?? []), value];
