import { isSecretKey } from '../core/redact.js';
import type { AgentPaths } from '../home/layout.js';

/**
 * The only variables a manager hands an instance. Everything else, the Letta key and
 * Telegram tokens above all, the runtime reads from its own `.env`: a process manager
 * persists the environment it is given (PM2's dump file, `pm2 describe`), and a value
 * baked in there would also survive an edit of `.env`.
 */
const PASSED_THROUGH = ['PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'TMPDIR', 'NODE_EXTRA_CA_CERTS'] as const;

export function instanceEnv(paths: AgentPaths, callerEnv: NodeJS.ProcessEnv): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of PASSED_THROUGH) {
    const value = callerEnv[key];
    if (value !== undefined) env[key] = value;
  }
  env.ANIMUS_AGENT_DIR = paths.dir;
  env.NODE_ENV = 'production';
  return env;
}

/**
 * The caller's environment minus anything that looks like a secret or is meant for an
 * agent. A PM2 daemon spawned by this command inherits this (and shows it in
 * `pm2 report`), so `AGENT_API_KEY=… animus deploy --start` leaves no key behind.
 */
export function scrubbedEnv(callerEnv: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(callerEnv)) {
    if (isSecretKey(key)) continue;
    if (/^(AGENT_|TELEGRAM_|LETTA_)/.test(key)) continue;
    out[key] = value;
  }
  return out;
}
