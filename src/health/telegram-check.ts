import { isAlive } from '../core/pid.js';
import { readRuntimeState, type RuntimeSection } from '../instances/runtime-state.js';
import type { CheckResult, CheckStatus } from './types.js';

/**
 * The `telegram` check: what the agent's runtime recorded about its Telegram plugins
 * (runtime-state.json, sections `telegram_bot` and `telegram_user`): the bot's last
 * poll and when, a webhook in the way, a second poller, a refused token; the user
 * account's connection. Nothing is asked of Telegram here: the runtime is the one
 * that talks to it, and health says what it saw.
 */
export type TelegramPlugin = 'telegram_bot' | 'telegram_user';

/** A bot records a good poll at least once a minute; past this, its loop is stuck or Telegram silent. */
const STALE_POLL_S = 300;

const LABEL: Record<TelegramPlugin, string> = { telegram_bot: 'bot', telegram_user: 'user account' };
const RANK: Record<CheckStatus, number> = { ok: 0, unknown: 1, warn: 2, fail: 3 };

export function checkTelegram(agentDir: string, enabled: readonly TelegramPlugin[], now: number): CheckResult {
  const state = readRuntimeState(agentDir);
  if (!state || !isAlive(state.pid)) {
    return { name: 'telegram', status: 'unknown', message: state ? `last recorded by a runtime that has stopped (pid ${state.pid})` : 'nothing recorded: the runtime is not running' };
  }
  const parts = enabled.map((plugin) => judge(plugin, state.sections[plugin], now));
  const status = parts.reduce<CheckStatus>((worst, part) => (RANK[part.status] > RANK[worst] ? part.status : worst), 'ok');
  return { name: 'telegram', status, message: parts.map((p) => (enabled.length > 1 ? `${LABEL[p.plugin]}: ${p.message}` : p.message)).join('; ') };
}

function judge(plugin: TelegramPlugin, section: RuntimeSection | undefined, now: number): { plugin: TelegramPlugin; status: CheckStatus; message: string } {
  if (!section) return { plugin, status: 'unknown', message: 'not started yet' };
  if (section.status === 'error') return { plugin, status: 'fail', message: section.message };
  if (section.status === 'warn') return { plugin, status: 'warn', message: section.message };
  const bot = typeof section.bot === 'string' ? ` as ${section.bot}` : '';
  const last = typeof section.last_poll_ok_at === 'string' ? Date.parse(section.last_poll_ok_at) : Number.NaN;
  if (Number.isNaN(last)) return { plugin, status: 'ok', message: `${section.message}${bot}` };
  const age = Math.max(0, Math.round((now - last) / 1000));
  if (age > STALE_POLL_S) return { plugin, status: 'warn', message: `no answer from Telegram for ${age} s${bot}: see animus logs` };
  return { plugin, status: 'ok', message: `${section.message}${bot}, last answer ${age} s ago` };
}
