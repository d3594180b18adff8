/** Keys whose values never appear in output or logs. */
const SECRET_KEY = /(KEY|TOKEN|SECRET|PASSWORD|PASSPHRASE|HASH|SESSION)/i;

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** Shows enough of a secret to tell two apart, never enough to use it. */
export function maskSecret(value: string): string {
  if (value === '') return '';
  if (value.length <= 8) return '****';
  return `${value.slice(0, 3)}…${value.slice(-2)} (${value.length} chars)`;
}

export function redactEnv(env: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) out[key] = isSecretKey(key) ? maskSecret(value) : value;
  return out;
}

/**
 * Replaces every occurrence of the given secret values in free text (log lines,
 * error messages from libraries that echo a URL with a bot token in it).
 */
export function redactText(text: string, secrets: Iterable<string>): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 6) out = out.split(secret).join('[REDACTED]');
  }
  return out;
}
