import { describe, expect, it } from 'vitest';
import { SendPacer, TELEGRAM_LIMITS } from '../../src/runtime/plugins/send-pacer.js';

/** A pacer on a clock the test moves: counts and order, no wall-clock time. */
function pacer() {
  let now = 1_000_000;
  const p = new SendPacer(TELEGRAM_LIMITS, () => now);
  return { p, advance: (ms: number) => (now += ms) };
}

/** How many of `n` sends to each chat go out at once (each that goes out is counted). */
const sendAll = (p: SendPacer, chats: string[]) => chats.filter((chat) => p.reserve(chat) === 0).length;

describe('SendPacer (Telegram limits)', () => {
  it('lets one message a second through per chat, and says how long the next one waits', () => {
    const { p, advance } = pacer();
    expect(p.reserve('42')).toBe(0);
    expect(p.reserve('42')).toBe(1000);
    advance(400);
    expect(p.reserve('42')).toBe(600);
    // Another chat is not held up by this one.
    expect(p.reserve('43')).toBe(0);
    advance(600);
    expect(p.reserve('42')).toBe(0);
  });

  it('allows 20 messages a minute to a group, then makes the 21st wait for the oldest to age out', () => {
    const { p, advance } = pacer();
    let sent = 0;
    for (let i = 0; i < 25; i++) {
      if (p.reserve('-1004242') === 0) sent++;
      advance(1000);
    }
    // 25 s of one-a-second sends: 20 went, the other 5 were told to wait.
    expect(sent).toBe(20);
    expect(p.reserve('-1004242')).toBe(60_000 - 25_000);
    advance(35_000);
    expect(p.reserve('-1004242')).toBe(0);
  });

  it('keeps to about 30 messages a second in all', () => {
    const { p, advance } = pacer();
    const chats = Array.from({ length: 40 }, (_, i) => String(1000 + i));
    expect(sendAll(p, chats)).toBe(30);
    expect(p.reserve('2000')).toBeGreaterThan(0);
    advance(1000);
    expect(sendAll(p, chats.slice(30))).toBe(10);
  });

  it("holds a chat for Telegram's retry_after while the others go on", () => {
    const { p, advance } = pacer();
    p.block('61', 5000);
    expect(p.reserve('61')).toBe(5000);
    expect(p.reserve('62')).toBe(0);
    advance(5000);
    expect(p.reserve('61')).toBe(0);
  });
});
