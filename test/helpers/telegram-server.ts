import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A real HTTP server on 127.0.0.1 speaking the Bot API methods the runtime uses
 * (`{apiRoot}/bot{token}/{method}`, JSON `{ok, result}`):
 *
 *   getUpdates   long polling: answers at once when updates are queued, else holds the
 *                request up to its `timeout` (capped by `maxHoldMs`); confirms with `offset`
 *                (updates below it are forgotten), `limit`; 409 while a webhook is set; a
 *                second getUpdates while one is held ends the held one with 409
 *                ("terminated by other getUpdates request"), as Telegram does
 *   sendMessage  records the message and when; 4096 characters at most; a group that
 *                became a supergroup answers 400 with `parameters.migrate_to_chat_id`;
 *                a chat limited by `limitChat` answers 429 with `parameters.retry_after`
 *   getMe, getWebhookInfo, setWebhook, deleteWebhook
 *
 * Usage:
 *   const tg = await startTelegramServer({ token: '123:abc' });
 *   // .env: TELEGRAM_API_ROOT=tg.url, TELEGRAM_BOT_TOKEN=123:abc
 *   tg.sendText({ userId: 42, username: 'alice', text: 'hi' });   // a user writes to the bot
 *   tg.failSend({ status: 429, retryAfter: 1 }, { status: 400, description: "Bad Request: can't parse entities" });
 *   tg.failUpdates({ status: 409 });                               // next getUpdates answers 409
 *   tg.failSend({ status: 200, delayMs: 3000 });                   // a slow (but successful) send
 *   await tg.waitForSent(1)                                        // the bot's sent messages
 *   tg.requests                                                    // every call: {method, params, at}
 *   tg.setWebhook('https://hooks.example.org/x')                   // getUpdates answers 409 until deleteWebhook
 *   tg.revokeToken()                                               // every call answers 401 from now on
 *   tg.sendMedia({ userId: 42, voice: {...} })                     // a message without text
 *   tg.migrateGroup(-100, -1001234)                                 // the group becomes a supergroup
 *   tg.limitChat('42', { retryAfter: 2 })                          // the next send to chat 42 answers 429
 *
 * A wrong token answers 401 `Unauthorized`, like Telegram.
 */
export interface SentMessage {
  chat_id: string;
  text: string;
  parse_mode?: string;
  /** When the stand-in accepted it (ms since epoch): pacing is asserted on order and count, these only as lower bounds. */
  at: number;
}

export type UserMessageInput = {
  userId: number;
  username?: string;
  firstName?: string;
  chatId?: number;
  chatType?: 'private' | 'group' | 'supergroup';
  messageId?: number;
};

export interface TelegramFailure {
  /** The answer's status; 200 with `delayMs` is a slow success. */
  status: number;
  /** Wait before answering. */
  delayMs?: number;
  description?: string;
  retryAfter?: number;
  /** Destroy the connection instead of answering. */
  drop?: boolean;
}

export interface TelegramServer {
  url: string;
  requests: Array<{ method: string; params: Record<string, unknown>; at: number }>;
  sent: SentMessage[];
  /** Sends answered 429, by chat. */
  limited: string[];
  sendText(message: UserMessageInput & { text: string }): number;
  /** A message with fields other than text (`photo`, `caption`, `voice`, `sticker`, …), as the Bot API shapes them. */
  sendMedia(message: UserMessageInput & Record<string, unknown>): number;
  setWebhook(url: string): void;
  webhook(): string;
  revokeToken(): void;
  /** The group becomes a supergroup: both service messages are queued (unless `announce: false`), and sends to the old id answer 400 migrate_to_chat_id. */
  migrateGroup(from: number, to: number, options?: { announce?: boolean }): void;
  /** The next `count` sends to this chat answer 429 with `retry_after`. */
  limitChat(chatId: string, options: { retryAfter: number; count?: number }): void;
  failSend(...failures: TelegramFailure[]): void;
  failUpdates(...failures: TelegramFailure[]): void;
  waitForSent(count: number, timeoutMs?: number): Promise<SentMessage[]>;
  /** Updates not yet confirmed by an offset. */
  pendingUpdates(): number;
  /**
   * Drops unconfirmed updates, scripted failures and what was recorded, and restores the token and webhook. One bot token is shared by the
   * tests of a file: an update that a killed runtime never confirmed would otherwise
   * reach the next test's runtime, as Telegram would hand it to the next poller.
   */
  reset(): void;
  close(): Promise<void>;
}

export interface TelegramServerOptions {
  token: string;
  /** Longest a getUpdates is held when nothing is queued (default 1000 ms, keeps tests quick). */
  maxHoldMs?: number;
  /** The address to listen on (default 127.0.0.1; the cluster test gives its network namespace's node address). */
  host?: string;
}

export async function startTelegramServer(options: TelegramServerOptions): Promise<TelegramServer> {
  const updates: Array<{ update_id: number; message: unknown }> = [];
  let webhookUrl = '';
  let revoked = false;
  const migratedChats = new Map<string, number>();
  const chatLimits = new Map<string, { retryAfter: number; count: number }>();
  /** Held getUpdates, each with how to end it with a 409 when another poller comes. */
  const heldPolls = new Set<(conflict: boolean) => void>();
  const sendFailures: TelegramFailure[] = [];
  const updateFailures: TelegramFailure[] = [];
  const holders = new Set<() => void>();
  const sentWaiters: Array<() => void> = [];
  const sockets = new Set<Socket>();
  let updateSeq = 1000;
  let messageSeq = 1;
  let botMessageSeq = 5000;

  const push = (message: Record<string, unknown>) => {
    updates.push({ update_id: updateSeq++, message });
    for (const release of [...holders]) release();
  };
  const userMessage = (input: UserMessageInput & Record<string, unknown>): number => {
    const { userId, username, firstName, chatId, chatType, messageId, ...fields } = input;
    const id = messageId ?? messageSeq++;
    push({
      message_id: id,
      date: Math.floor(Date.now() / 1000),
      chat: { id: chatId ?? userId, type: chatType ?? (chatId !== undefined && chatId < 0 ? 'group' : 'private') },
      from: { id: userId, is_bot: false, first_name: firstName ?? 'Dora', username },
      ...fields,
    });
    return id;
  };

  const state: TelegramServer = {
    url: '',
    requests: [],
    sent: [],
    limited: [],
    sendText: (message) => userMessage(message),
    sendMedia: (message) => userMessage(message),
    setWebhook(url) {
      webhookUrl = url;
      for (const end of [...heldPolls]) end(true);
    },
    webhook: () => webhookUrl,
    revokeToken() {
      revoked = true;
    },
    migrateGroup(from, to, options = {}) {
      migratedChats.set(String(from), to);
      if (options.announce === false) return;
      const date = Math.floor(Date.now() / 1000);
      const from_ = { id: 1, is_bot: false, first_name: 'Admin' };
      push({ message_id: messageSeq++, date, chat: { id: from, type: 'group' }, from: from_, migrate_to_chat_id: to });
      push({ message_id: messageSeq++, date, chat: { id: to, type: 'supergroup' }, from: from_, migrate_from_chat_id: from });
    },
    limitChat(chatId, options) {
      chatLimits.set(chatId, { retryAfter: options.retryAfter, count: options.count ?? 1 });
    },
    failSend: (...f) => {
      sendFailures.push(...f);
    },
    failUpdates: (...f) => {
      updateFailures.push(...f);
    },
    waitForSent: (count, timeoutMs = 20_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (state.sent.length >= count) {
            clearTimeout(timer);
            resolve(state.sent);
            return true;
          }
          return false;
        };
        const timer = setTimeout(() => reject(new Error(`Telegram stand-in: expected ${count} sent messages, got ${state.sent.length}`)), timeoutMs);
        const waiter = () => {
          if (!check()) sentWaiters.push(waiter);
        };
        if (!check()) sentWaiters.push(waiter);
      }),
    pendingUpdates: () => updates.length,
    reset: () => {
      updates.length = 0;
      state.sent.length = 0;
      state.requests.length = 0;
      state.limited.length = 0;
      webhookUrl = '';
      revoked = false;
      migratedChats.clear();
      chatLimits.clear();
      sendFailures.length = 0;
      updateFailures.length = 0;
    },
    close: () =>
      new Promise((resolve) => {
        for (const release of holders) release();
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };

  const send = (res: ServerResponse, status: number, body: unknown) => {
    if (res.destroyed) return;
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const conflict = (res: ServerResponse, description: string) => send(res, 409, { ok: false, error_code: 409, description });
  /** Applies a scripted step; returns true when it answered (a failure), false to go on normally. */
  const fail = async (req: IncomingMessage, res: ServerResponse, failure: TelegramFailure): Promise<boolean> => {
    if (failure.delayMs) await new Promise((r) => setTimeout(r, failure.delayMs));
    if (failure.drop) {
      req.socket.destroy();
      return true;
    }
    if (failure.status === 200) return false;
    send(res, failure.status, {
      ok: false,
      error_code: failure.status,
      description: failure.description ?? `stand-in error ${failure.status}`,
      ...(failure.retryAfter !== undefined ? { parameters: { retry_after: failure.retryAfter } } : {}),
    });
    return true;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    let params: Record<string, unknown> = Object.fromEntries(url.searchParams);
    if (raw !== '') {
      try {
        params = { ...params, ...(JSON.parse(raw) as Record<string, unknown>) };
      } catch {
        return send(res, 400, { ok: false, error_code: 400, description: 'Bad Request: invalid JSON' });
      }
    }
    const match = /^\/bot([^/]+)\/(\w+)$/.exec(url.pathname);
    if (!match) return send(res, 404, { ok: false, error_code: 404, description: 'Not Found' });
    const [, token, method] = match;
    state.requests.push({ method: method!, params, at: Date.now() });
    if (token !== options.token || revoked) return send(res, 401, { ok: false, error_code: 401, description: 'Unauthorized' });

    if (method === 'getMe') return send(res, 200, { ok: true, result: { id: 7012398745, is_bot: true, first_name: 'Animus bot', username: 'animus_stand_in_bot' } });
    if (method === 'getWebhookInfo') return send(res, 200, { ok: true, result: { url: webhookUrl, has_custom_certificate: false, pending_update_count: updates.length } });
    if (method === 'setWebhook' || method === 'deleteWebhook') {
      state.setWebhook(method === 'setWebhook' ? String(params.url ?? '') : '');
      if (method === 'deleteWebhook' && (params.drop_pending_updates === true || params.drop_pending_updates === 'true')) updates.length = 0;
      return send(res, 200, { ok: true, result: true, description: method === 'setWebhook' ? 'Webhook was set' : 'Webhook was deleted' });
    }
    if (method === 'getUpdates') {
      const failure = updateFailures.shift();
      if (failure && (await fail(req, res, failure))) return;
      if (webhookUrl !== '') return conflict(res, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first");
      // A second poller ends the one held so far, as Telegram does.
      for (const end of [...heldPolls]) end(true);
      const offset = Number(params.offset ?? 0);
      // Confirmed updates are forgotten, as Telegram does.
      while (updates.length > 0 && updates[0]!.update_id < offset) updates.shift();
      if (updates.length === 0) {
        const holdMs = Math.min(Number(params.timeout ?? 0) * 1000, options.maxHoldMs ?? 1000);
        const ended = await new Promise<boolean>((resolve) => {
          const onClose = () => release();
          const release = (conflict = false) => {
            clearTimeout(timer);
            holders.delete(release);
            heldPolls.delete(release);
            // The connection is kept alive for the next poll: its listener goes with this one.
            req.socket.off('close', onClose);
            resolve(conflict);
          };
          const timer = setTimeout(release, holdMs);
          holders.add(release);
          heldPolls.add(release);
          req.socket.once('close', onClose);
        });
        if (ended) return conflict(res, 'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running');
      }
      return send(res, 200, { ok: true, result: updates.slice(0, Number(params.limit ?? 100)) });
    }
    if (method === 'sendMessage') {
      const failure = sendFailures.shift();
      if (failure && (await fail(req, res, failure))) return;
      const chatId = String(params.chat_id);
      const movedTo = migratedChats.get(chatId);
      if (movedTo !== undefined) {
        return send(res, 400, { ok: false, error_code: 400, description: 'Bad Request: group chat was upgraded to a supergroup chat', parameters: { migrate_to_chat_id: movedTo } });
      }
      const limit = chatLimits.get(chatId);
      if (limit) {
        if (--limit.count <= 0) chatLimits.delete(chatId);
        state.limited.push(chatId);
        return send(res, 429, { ok: false, error_code: 429, description: `Too Many Requests: retry after ${limit.retryAfter}`, parameters: { retry_after: limit.retryAfter } });
      }
      const text = String(params.text ?? '');
      if (text.length > 4096) return send(res, 400, { ok: false, error_code: 400, description: 'Bad Request: message is too long' });
      state.sent.push({ chat_id: chatId, text, parse_mode: params.parse_mode as string | undefined, at: Date.now() });
      for (const waiter of sentWaiters.splice(0)) waiter();
      return send(res, 200, { ok: true, result: { message_id: botMessageSeq++, date: Math.floor(Date.now() / 1000), chat: { id: Number(params.chat_id) }, text } });
    }
    return send(res, 404, { ok: false, error_code: 404, description: 'Not Found: method not found' });
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => send(res, 500, { ok: false, error_code: 500, description: String(error) }));
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  state.url = `http://${host}:${(server.address() as AddressInfo).port}`;
  return state;
}
