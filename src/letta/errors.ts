/**
 * A failed call to Letta, classified once for everything that reacts to it: the
 * queue (retry or fail, and when), the circuit breaker (endpoint faults only) and
 * `agent_requests.error_kind` (what metrics count). Letta answers errors in two
 * shapes, `{"detail": string | object}` and `{"error": {"type", "message", "detail"}}`;
 * both become one line without a doubled prefix.
 */

/** `agent_requests.error_kind` for transport and HTTP failures (stop reasons add their own, see stop-reasons.ts). */
export type ErrorKind = 'timeout' | 'connection' | 'http_4xx' | 'http_5xx' | 'rate_limited' | 'aborted';

export class LettaCallError extends Error {
  constructor(
    message: string,
    readonly kind: ErrorKind,
    readonly options: {
      status?: number;
      /** From Retry-After (a 409 database lock carries 1 s; a provider 429 carries none). */
      retryAfterMs?: number;
      /** `detail.code` of an object detail, e.g. PENDING_APPROVAL. */
      code?: string;
      /** The parsed detail object, when Letta sent one (PENDING_APPROVAL carries the request id). */
      detail?: Record<string, unknown>;
    } = {},
  ) {
    super(message);
    this.name = 'LettaCallError';
  }

  get status(): number | undefined {
    return this.options.status;
  }

  get retryAfterMs(): number | undefined {
    return this.options.retryAfterMs;
  }

  get code(): string | undefined {
    return this.options.code;
  }

  /** Aborted by our own shutdown: not a failure of the agent. */
  get aborted(): boolean {
    return this.kind === 'aborted';
  }

  /** Worth asking again later: transport faults, 408/409/429 and 5xx. */
  get retryable(): boolean {
    if (this.kind !== 'http_4xx') return true;
    return this.status === 408 || this.status === 409;
  }

  /**
   * A fault of the endpoint as a whole (what the circuit breaker counts): it cannot be
   * reached, times out, fails, limits the rate, or refuses the key. A 4xx about one
   * message or one user's block (400, 404 block, 409, 422) is not.
   */
  get endpointFault(): boolean {
    if (this.kind === 'aborted') return false;
    if (this.kind !== 'http_4xx') return true;
    return this.status === 401 || this.status === 403;
  }
}

const MAX_TEXT = 300;

/** One line from a Letta error body of either shape, or undefined when it holds none. */
export function errorBodyText(body: unknown): string | undefined {
  if (typeof body === 'string') return body.trim() === '' ? undefined : clip(body);
  if (typeof body !== 'object' || body === null) return undefined;
  const record = body as Record<string, unknown>;
  if (typeof record.error === 'object' && record.error !== null) {
    const error = record.error as Record<string, unknown>;
    const message = typeof error.message === 'string' ? error.message : undefined;
    const detail = detailText(error.detail);
    const type = typeof error.type === 'string' ? error.type : undefined;
    const parts = [message, detail && detail !== message ? detail : undefined].filter(Boolean);
    if (parts.length > 0) return clip(parts.join(': '));
    return type;
  }
  if ('detail' in record) return detailText(record.detail);
  if (typeof record.message === 'string') return clip(record.message);
  return undefined;
}

/** `detail.code` (PENDING_APPROVAL, …) of either shape. */
export function errorBodyCode(body: unknown): { code?: string; detail?: Record<string, unknown> } {
  if (typeof body !== 'object' || body === null) return {};
  const record = body as Record<string, unknown>;
  const detail = (typeof record.error === 'object' && record.error !== null ? (record.error as Record<string, unknown>).detail : record.detail) as unknown;
  if (typeof detail === 'object' && detail !== null && !Array.isArray(detail)) {
    const code = (detail as Record<string, unknown>).code;
    return { code: typeof code === 'string' ? code : undefined, detail: detail as Record<string, unknown> };
  }
  return {};
}

function detailText(detail: unknown): string | undefined {
  if (detail === undefined || detail === null) return undefined;
  if (typeof detail === 'string') return clip(detail);
  if (Array.isArray(detail)) {
    // FastAPI validation errors: [{loc, msg, type}].
    const msgs = detail.map((d) => (typeof d === 'object' && d !== null && typeof (d as { msg?: unknown }).msg === 'string' ? ((d as { loc?: unknown[] }).loc ? `${((d as { loc: unknown[] }).loc).join('.')}: ` : '') + (d as { msg: string }).msg : JSON.stringify(d)));
    return clip(msgs.join('; '));
  }
  if (typeof detail === 'object') {
    const record = detail as Record<string, unknown>;
    const message = typeof record.message === 'string' ? record.message : undefined;
    const code = typeof record.code === 'string' ? record.code : undefined;
    if (message && code) return clip(`${code}: ${message}`);
    if (message || code) return clip((message ?? code)!);
    return clip(JSON.stringify(detail));
  }
  return clip(String(detail));
}

function clip(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > MAX_TEXT ? `${line.slice(0, MAX_TEXT - 1)}…` : line;
}

/** Retry-After in seconds or as an HTTP date, in ms; undefined when absent or unreadable. */
export function parseRetryAfter(raw: string | undefined, now: number = Date.now()): number | undefined {
  if (raw === undefined || raw.trim() === '') return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(raw);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export function kindForStatus(status: number): ErrorKind {
  if (status === 429) return 'rate_limited';
  return status >= 500 ? 'http_5xx' : 'http_4xx';
}
