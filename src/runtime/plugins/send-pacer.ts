/**
 * Telegram's send limits, kept before Telegram has to say 429: about one message a
 * second per chat, 20 a minute per group, about 30 a second in all; and a chat that
 * got a 429 waits its own `retry_after` while other chats go on. `reserve` either
 * takes the slot (0) or says how long until one is free; the caller defers the send
 * instead of sleeping, so one slow chat never holds up the others.
 */
export interface PacerLimits {
  chatIntervalMs: number;
  groupPerMinute: number;
  globalPerSecond: number;
}

export const TELEGRAM_LIMITS: PacerLimits = { chatIntervalMs: 1000, groupPerMinute: 20, globalPerSecond: 30 };

const MINUTE = 60_000;
const SECOND = 1000;

export class SendPacer {
  private readonly lastSent = new Map<string, number>();
  private readonly blockedUntil = new Map<string, number>();
  private readonly groupSends = new Map<string, number[]>();
  private readonly allSends: number[] = [];

  constructor(
    private readonly limits: PacerLimits = TELEGRAM_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  /** 0: the send may go now (and is counted); otherwise the milliseconds until it may. */
  reserve(chatId: string): number {
    const now = this.now();
    this.prune(now);
    let at = Math.max(this.blockedUntil.get(chatId) ?? 0, (this.lastSent.get(chatId) ?? -Infinity) + this.limits.chatIntervalMs);
    const group = isGroup(chatId) ? (this.groupSends.get(chatId) ?? []) : undefined;
    if (group && group.length >= this.limits.groupPerMinute) at = Math.max(at, group[group.length - this.limits.groupPerMinute]! + MINUTE);
    if (this.allSends.length >= this.limits.globalPerSecond) at = Math.max(at, this.allSends[this.allSends.length - this.limits.globalPerSecond]! + SECOND);
    if (at > now) return Math.ceil(at - now);
    this.lastSent.set(chatId, now);
    if (group) {
      group.push(now);
      this.groupSends.set(chatId, group);
    }
    this.allSends.push(now);
    return 0;
  }

  /** Telegram answered 429 for this chat: nothing goes to it for `ms`. */
  block(chatId: string, ms: number): void {
    this.blockedUntil.set(chatId, Math.max(this.blockedUntil.get(chatId) ?? 0, this.now() + ms));
  }

  /** Forgets what no limit looks at any more, so a bot that talked to many chats does not grow without bound. */
  private prune(now: number): void {
    while (this.allSends.length > 0 && this.allSends[0]! <= now - SECOND) this.allSends.shift();
    if (this.lastSent.size < 256) return;
    for (const [chat, at] of this.lastSent) if (at <= now - this.limits.chatIntervalMs) this.lastSent.delete(chat);
    for (const [chat, until] of this.blockedUntil) if (until <= now) this.blockedUntil.delete(chat);
    for (const [chat, sends] of this.groupSends) {
      while (sends.length > 0 && sends[0]! <= now - MINUTE) sends.shift();
      if (sends.length === 0) this.groupSends.delete(chat);
    }
  }
}

/** Telegram group and supergroup chat ids are negative; private chats are the user's (positive) id. */
function isGroup(chatId: string): boolean {
  return chatId.startsWith('-');
}
