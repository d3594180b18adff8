/**
 * The few Bot API calls the runtime makes, over fetch: `{apiRoot}/bot{token}/{method}`
 * with JSON bodies. The API root is configurable (TELEGRAM_API_ROOT) so tests run
 * against a local server. Errors never carry the URL (it holds the token).
 */
export interface TelegramUser {
  id: number;
  is_bot?: boolean;
  first_name?: string;
  last_name?: string;
  username?: string;
}

export interface TelegramMessage {
  message_id: number;
  date: number;
  chat: { id: number; type?: string };
  from?: TelegramUser;
  text?: string;
  /** The text of a photo, video, document, audio or voice message. */
  caption?: string;
  /** Service messages when a group becomes a supergroup: in the old group, and in the new one. */
  migrate_to_chat_id?: number;
  migrate_from_chat_id?: number;
  [media: string]: unknown;
}

export interface WebhookInfo {
  url: string;
  pending_update_count?: number;
  last_error_message?: string;
}

export interface TelegramUpdate {
  update_id: number;
  message?: TelegramMessage;
}

export class TelegramApiError extends Error {
  constructor(
    readonly method: string,
    /** HTTP status, or 0 when no answer came (network). */
    readonly status: number,
    readonly description: string,
    readonly retryAfterS?: number,
    /** A group upgraded to a supergroup: send to this chat id instead. */
    readonly migrateToChatId?: number,
  ) {
    super(`Telegram ${method} failed${status ? ` (${status})` : ''}: ${description}`);
    this.name = 'TelegramApiError';
  }
}

export class BotApi {
  private readonly base: string;

  constructor(token: string, apiRoot: string = 'https://api.telegram.org') {
    this.base = `${apiRoot.replace(/\/+$/, '')}/bot${token}`;
  }

  /** `timeoutMs` bounds the whole call: a connection that silently dies must not stall polling or delivery forever. */
  async call<T>(method: string, params: Record<string, unknown>, signal: AbortSignal, timeoutMs = 30_000): Promise<T> {
    const bounded = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
    let response: Response;
    try {
      response = await fetch(`${this.base}/${method}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(params),
        signal: bounded,
      });
    } catch (error) {
      if (signal.aborted) throw error;
      if (bounded.aborted) throw new TelegramApiError(method, 0, `no answer within ${Math.round(timeoutMs / 1000)} s`);
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new TelegramApiError(method, 0, cause?.code ?? cause?.message ?? 'network error');
    }
    let body: { ok?: boolean; result?: T; description?: string; parameters?: { retry_after?: number; migrate_to_chat_id?: number } };
    try {
      body = (await response.json()) as typeof body;
    } catch (error) {
      if (signal.aborted) throw error;
      if (bounded.aborted) throw new TelegramApiError(method, 0, `no answer within ${Math.round(timeoutMs / 1000)} s`);
      throw new TelegramApiError(method, response.status, `unreadable answer (HTTP ${response.status})`);
    }
    if (body.ok === true && response.ok) return body.result as T;
    throw new TelegramApiError(method, response.status, body.description ?? `HTTP ${response.status}`, body.parameters?.retry_after, body.parameters?.migrate_to_chat_id);
  }
}

/** A webhook URL can carry a secret in its path: only its scheme and host are ever shown. */
export function webhookOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'unreadable URL';
  }
}
