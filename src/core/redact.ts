/** Keys whose values never appear in output or logs. */
const SECRET_KEY = /(KEY|TOKEN|SECRET|PASSWORD|PASSPHRASE|HASH|SESSION)/i;

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
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
