/**
 * What never appears in output or logs. Two rules, both applied to every line:
 * - the value of every key whose name looks secret (`*KEY*`, `*TOKEN*`, `*SESSION*`, …);
 * - any value that has the shape of a secret, whatever key it sits under (a bot token
 *   pasted into TELEGRAM_OWNER_ID, a key echoed in a library's error message): Letta
 *   and other `sk-…` API keys, Telegram bot tokens, GramJS/Telethon string sessions.
 */
const SECRET_KEY = /(KEY|TOKEN|SECRET|PASSWORD|PASSPHRASE|HASH|SESSION)/i;

export const REDACTED = '[REDACTED]';

/** The shapes. A bot token also matches inside a URL (`/bot<token>/`), so no word boundary before its digits. */
const SECRET_SHAPES: readonly RegExp[] = [
  // Letta keys (sk-let-...) and the other sk- keys (sk-proj-..., sk-ant-...).
  /(?<![A-Za-z0-9])sk-[A-Za-z0-9][A-Za-z0-9_-]{10,}/g,
  // Telegram bot tokens: <bot id>:<35 characters>.
  /(?<!\d)\d{6,}:[A-Za-z0-9_-]{30,}/g,
  // String sessions (Telethon and GramJS): version '1' then base64 of dc, address and a 256-byte auth key.
  /(?<![A-Za-z0-9+/_-])1[A-Za-z0-9+/_-]{200,}={0,2}/g,
];

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** Whether a value has the shape of a key, token or session. */
export function looksSecret(value: string): boolean {
  return SECRET_SHAPES.some((shape) => {
    shape.lastIndex = 0;
    return shape.test(value);
  });
}

/** The values to mask from an environment: those of secret-named keys and every secret-shaped one. */
export function secretValues(env: Record<string, string | undefined>): string[] {
  return Object.entries(env)
    .filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1].trim() !== '' && (isSecretKey(entry[0]) || looksSecret(entry[1])))
    .map(([, value]) => value);
}

/**
 * Replaces every occurrence of the given secret values, then every secret-shaped word,
 * in free text (log lines, error messages from libraries that echo a URL with a bot
 * token in it).
 */
export function redactText(text: string, secrets: Iterable<string> = []): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 6) out = out.split(secret).join(REDACTED);
  }
  for (const shape of SECRET_SHAPES) out = out.replace(shape, REDACTED);
  return out;
}
