import { createLogin, type MtprotoLogin, type StartCallbacks } from './mtproto-login.js';

/**
 * The thin seam between the telegram_user plugin (and `animus telegram login`) and an
 * MTProto library. GramJS (`telegram`) implements it today; `teleproto`, its
 * maintained fork with the same API, can replace it by changing only this file.
 * MTProto cannot be faked locally (Telegram's keys are pinned), so tests drive the
 * plugin through an in-memory implementation of this interface.
 */
export interface UserMessage {
  /** Message id, unique within its chat. */
  id: string;
  chatId: string;
  chatType: 'private' | 'group' | 'channel';
  senderId: string;
  senderIsBot: boolean;
  username: string | null;
  displayName: string | null;
  text: string;
  /** Seconds since the epoch. */
  date: number;
}

export interface MtprotoCredentials {
  apiId: number;
  apiHash: string;
  session: string;
}

export interface MtprotoAdapter {
  connect(): Promise<void>;
  /**
   * Reads the recent dialogs, which fills the library's entity cache: a string
   * session does not keep it, and without it a reply to a user id fails after a
   * restart ("Could not find the input entity"). Returns how many were read.
   */
  loadDialogs(limit: number): Promise<number>;
  /** Incoming messages while connected (the plugin decides which to keep). */
  onMessage(handler: (message: UserMessage) => void): void;
  /** Incoming messages of recent chats sent after `sinceS`, at most `limitPerChat` per chat, oldest first (catch-up after downtime). */
  recentMessages(limitPerChat: number, sinceS: number): Promise<UserMessage[]>;
  /** Sends plain text: nothing in it is read as Markdown or HTML. */
  sendMessage(chatId: string, text: string): Promise<void>;
  disconnect(): Promise<void>;
}

export type { LoginPrompts, MtprotoLogin, StartCallbacks } from './mtproto-login.js';

export type MtprotoAdapterFactory = (credentials: MtprotoCredentials) => MtprotoAdapter;

/* GramJS is CommonJS without ESM types that fit this use; these are the few members used. */
export interface GramClient {
  connect(): Promise<unknown>;
  disconnect(): Promise<unknown>;
  destroy?(): Promise<unknown>;
  start(callbacks: StartCallbacks): Promise<void>;
  session: { save(): string };
  addEventHandler(handler: (event: { message: GramMessage }) => void, builder: unknown): void;
  getDialogs(params: { limit: number }): Promise<Array<{ isUser?: boolean; isGroup?: boolean; id?: unknown; entity?: unknown }>>;
  getMessages(entity: unknown, params: { limit: number }): Promise<GramMessage[]>;
  sendMessage(entity: unknown, params: { message: string; parseMode: false }): Promise<unknown>;
  getSender?: never;
}

export interface GramMessage {
  id: number;
  message?: string;
  date: number;
  out?: boolean;
  isPrivate?: boolean;
  isGroup?: boolean;
  isChannel?: boolean;
  chatId?: { toString(): string };
  senderId?: { toString(): string };
  getSender(): Promise<{ username?: string; firstName?: string; lastName?: string; bot?: boolean } | undefined>;
}

export interface GramJs {
  TelegramClient: new (...args: unknown[]) => GramClient;
  StringSession: new (s: string) => unknown;
  NewMessage: new (o: object) => unknown;
  Logger: new (level: string) => unknown;
}

async function loadGramJs(): Promise<GramJs> {
  const pick = (mod: unknown) => ((mod as { default?: unknown }).default ?? mod) as Record<string, unknown>;
  const [main, sessions, events, logger] = await Promise.all([
    import('telegram'),
    import('telegram/sessions/index.js'),
    import('telegram/events/index.js'),
    import('telegram/extensions/Logger.js'),
  ]);
  return {
    TelegramClient: pick(main).TelegramClient as never,
    StringSession: pick(sessions).StringSession as never,
    NewMessage: pick(events).NewMessage as never,
    Logger: pick(logger).Logger as never,
  };
}

async function toUserMessage(message: GramMessage): Promise<UserMessage | undefined> {
  if (!message.message || message.out) return undefined;
  const sender = await message.getSender().catch(() => undefined);
  return {
    id: String(message.id),
    chatId: message.chatId?.toString() ?? message.senderId?.toString() ?? '',
    chatType: message.isPrivate ? 'private' : message.isChannel && !message.isGroup ? 'channel' : 'group',
    senderId: message.senderId?.toString() ?? '',
    senderIsBot: sender?.bot === true,
    username: sender?.username ?? null,
    displayName: [sender?.firstName, sender?.lastName].filter(Boolean).join(' ') || null,
    text: message.message,
    date: message.date,
  };
}

/** The GramJS implementation, loaded only when telegram_user is enabled (it is large). */
export const createGramJsAdapter: MtprotoAdapterFactory = (credentials) => gramJsAdapter(credentials, loadGramJs);

/** With the library passed in, so a test can check what reaches GramJS without a network. */
export function gramJsAdapter(credentials: MtprotoCredentials, load: () => Promise<GramJs>): MtprotoAdapter {
  let client: GramClient | undefined;
  const handlers: Array<(message: UserMessage) => void> = [];
  return {
    async connect() {
      const gram = await load();
      // GramJS logs plain text to stdout from its constructor on, which would break the
      // runtime's one-JSON-object-per-line log: silence it; the plugin logs what matters.
      client = new gram.TelegramClient(new gram.StringSession(credentials.session), credentials.apiId, credentials.apiHash, {
        connectionRetries: 5,
        baseLogger: new gram.Logger('none'),
      });
      await client.connect();
      client.addEventHandler((event) => {
        void toUserMessage(event.message).then((message) => {
          if (message) for (const handler of handlers) handler(message);
        });
      }, new gram.NewMessage({ incoming: true }));
    },
    async loadDialogs(limit) {
      if (!client) return 0;
      return (await client.getDialogs({ limit })).length;
    },
    onMessage(handler) {
      handlers.push(handler);
    },
    async recentMessages(limitPerChat, sinceS) {
      if (!client) return [];
      const dialogs = await client.getDialogs({ limit: 50 });
      const out: UserMessage[] = [];
      for (const dialog of dialogs.filter((d) => d.isUser || d.isGroup)) {
        for (const raw of await client.getMessages(dialog.entity, { limit: limitPerChat })) {
          if (raw.date <= sinceS) continue;
          const message = await toUserMessage(raw);
          if (message) out.push(message);
        }
      }
      return out.sort((a, b) => a.date - b.date);
    },
    async sendMessage(chatId, text) {
      if (!client) throw new Error('not connected');
      // GramJS reads Markdown by default: an agent's `*` or `_` would vanish or fail to parse.
      await client.sendMessage(chatId, { message: text, parseMode: false });
    },
    async disconnect() {
      await client?.destroy?.().catch(() => {});
      client = undefined;
    },
  };
}

/** The login on GramJS: `client.start` with the callbacks of mtproto-login (which own retries and cancel), then the session. */
export const gramJsLogin: MtprotoLogin = createLogin(async (apiId, apiHash) => {
  const gram = await loadGramJs();
  return new gram.TelegramClient(new gram.StringSession(''), apiId, apiHash, { connectionRetries: 3, baseLogger: new gram.Logger('none') });
});
