import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A real HTTP server on 127.0.0.1 speaking the Bot API methods the runtime uses
 * (`{apiRoot}/bot{token}/{method}`, JSON `{ok, result}`):
 *
 *   getUpdates   long polling: answers at once when updates are queued, else holds the
 *                request up to its `timeout` (capped by `maxHoldMs`); confirms with `offset`
 *   sendMessage  records the message; scriptable failures
 *   getMe        a fixed bot
 *
 * Usage:
 *   const tg = await startTelegramServer({ token: '123:abc' });
 *   // .env: TELEGRAM_API_ROOT=tg.url, TELEGRAM_BOT_TOKEN=123:abc
 *   tg.sendText({ userId: 42, username: 'alice', text: 'hi' });   // a user writes to the bot
 *   tg.failSend({ status: 429, retryAfter: 1 }, { status: 400, description: "Bad Request: can't parse entities" });
 *   tg.failUpdates({ status: 409 });                               // next getUpdates answers 409
 *   tg.failSend({ status: 200, delayMs: 3000 });                   // a slow (but successful) send
 *   await tg.waitForSent(1)                                        // the bot's sent messages
 *   tg.requests                                                    // every call: {method, params}
 *
 * A wrong token answers 401 `Unauthorized`, like Telegram.
 */
export interface SentMessage {
  chat_id: string;
  text: string;
  parse_mode?: string;
}

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
  requests: Array<{ method: string; params: Record<string, unknown> }>;
  sent: SentMessage[];
  sendText(message: { userId: number; username?: string; firstName?: string; chatId?: number; text: string; messageId?: number }): number;
  failSend(...failures: TelegramFailure[]): void;
  failUpdates(...failures: TelegramFailure[]): void;
  waitForSent(count: number, timeoutMs?: number): Promise<SentMessage[]>;
  /** Updates not yet confirmed by an offset. */
  pendingUpdates(): number;
  /**
   * Drops unconfirmed updates and scripted failures. One bot token is shared by the
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
}

export async function startTelegramServer(options: TelegramServerOptions): Promise<TelegramServer> {
  const updates: Array<{ update_id: number; message: unknown }> = [];
  const sendFailures: TelegramFailure[] = [];
  const updateFailures: TelegramFailure[] = [];
  const holders = new Set<() => void>();
  const sentWaiters: Array<() => void> = [];
  const sockets = new Set<Socket>();
  let updateSeq = 1000;
  let messageSeq = 1;
  let botMessageSeq = 5000;

  const state: TelegramServer = {
    url: '',
    requests: [],
    sent: [],
    sendText(message) {
      const id = message.messageId ?? messageSeq++;
      updates.push({
        update_id: updateSeq++,
        message: {
          message_id: id,
          date: Math.floor(Date.now() / 1000),
          chat: { id: message.chatId ?? message.userId, type: 'private' },
          from: { id: message.userId, is_bot: false, first_name: message.firstName ?? 'Test', username: message.username },
          text: message.text,
        },
      });
      for (const release of [...holders]) release();
      return id;
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
        if (!check()) sentWaiters.push(() => void check());
      }),
    pendingUpdates: () => updates.length,
    reset: () => {
      updates.length = 0;
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
    state.requests.push({ method: method!, params });
    if (token !== options.token) return send(res, 401, { ok: false, error_code: 401, description: 'Unauthorized' });

    if (method === 'getMe') return send(res, 200, { ok: true, result: { id: 1, is_bot: true, first_name: 'Test bot', username: 'test_bot' } });
    if (method === 'getUpdates') {
      const failure = updateFailures.shift();
      if (failure && (await fail(req, res, failure))) return;
      const offset = Number(params.offset ?? 0);
      // Confirmed updates are forgotten, as Telegram does.
      while (updates.length > 0 && updates[0]!.update_id < offset) updates.shift();
      if (updates.length === 0) {
        const holdMs = Math.min(Number(params.timeout ?? 0) * 1000, options.maxHoldMs ?? 1000);
        await new Promise<void>((resolve) => {
          const release = () => {
            clearTimeout(timer);
            holders.delete(release);
            resolve();
          };
          const timer = setTimeout(release, holdMs);
          holders.add(release);
          req.socket.once('close', release);
        });
      }
      return send(res, 200, { ok: true, result: updates.slice(0, Number(params.limit ?? 100)) });
    }
    if (method === 'sendMessage') {
      const failure = sendFailures.shift();
      if (failure && (await fail(req, res, failure))) return;
      const text = String(params.text ?? '');
      if (text.length > 4096) return send(res, 400, { ok: false, error_code: 400, description: 'Bad Request: message is too long' });
      state.sent.push({ chat_id: String(params.chat_id), text, parse_mode: params.parse_mode as string | undefined });
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
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}
