import { isSecretKey, redactText } from '../core/redact.js';

/** Flags whose value is a secret, whatever it looks like. */
const SECRET_FLAGS = new Set(['--api-key', '--passphrase', '--token', '--password']);
const REDACTED = '[REDACTED]';

/**
 * The arguments of a command as they go into the audit log: values of secret flags,
 * of KEY=VALUE pairs and of `env set KEY VALUE` with a secret-looking KEY replaced,
 * and any secret value from the caller's environment (AGENT_API_KEY=… animus deploy)
 * that appears anywhere.
 */
export function redactArgs(args: readonly string[], env: NodeJS.ProcessEnv = {}): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const previous = args[i - 1];
    if (previous !== undefined && SECRET_FLAGS.has(previous)) {
      out.push(REDACTED);
      continue;
    }
    const flag = /^(--[a-z-]+)=/.exec(arg);
    if (flag && SECRET_FLAGS.has(flag[1]!)) {
      out.push(`${flag[1]}=${REDACTED}`);
      continue;
    }
    const pair = /^([A-Za-z_][A-Za-z0-9_]*)=/.exec(arg);
    if (pair && isSecretKey(pair[1]!)) {
      out.push(`${pair[1]}=${REDACTED}`);
      continue;
    }
    // `env set <agent> KEY VALUE`: the value follows a secret-looking variable name.
    if (previous !== undefined && /^[A-Z_][A-Z0-9_]*$/.test(previous) && isSecretKey(previous) && args.includes('env')) {
      out.push(REDACTED);
      continue;
    }
    out.push(arg);
  }
  const secrets = Object.entries(env).flatMap(([key, value]) => (isSecretKey(key) && value ? [value] : []));
  return out.map((arg) => redactText(arg, secrets));
}
