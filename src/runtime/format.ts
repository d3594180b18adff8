import { PLATFORMS } from '../store/inbound.js';

/** Text shaping between the platforms and the agent. */

export interface Sender {
  username: string | null;
  displayName: string | null;
  platformUserId: string | null;
  /** The profile's platform; Telegram when unknown (Broca stored no other). */
  platform?: string | null;
}

/**
 * Broca's agent input: `[Username: @u, Telegram ID: 123] text` (the agent's prompts rely
 * on it). A message from `animus send` says `Local user:` instead: calling a shell user
 * name a Telegram id would mislead the agent.
 */
export function formatAgentInput(sender: Sender, text: string): string {
  const name = sender.username ? `@${sender.username.replace(/^@/, '')}` : (sender.displayName ?? 'unknown');
  const label = sender.platform === PLATFORMS.local ? 'Local user' : 'Telegram ID';
  return `[Username: ${name}, ${label}: ${sender.platformUserId ?? 'unknown'}] ${text}`;
}

/** Telegram's limit for one message. */
export const TELEGRAM_MAX_MESSAGE = 4096;

/**
 * Splits a reply into chunks of at most `max` characters, preferring paragraph, then
 * line, then word boundaries, and never splitting a surrogate pair.
 */
export function splitMessage(text: string, max: number = TELEGRAM_MAX_MESSAGE): string[] {
  const chunks: string[] = [];
  let rest = text;
  while (rest.length > max) {
    const window = rest.slice(0, max);
    let cut = Math.max(window.lastIndexOf('\n\n'), -1);
    if (cut < max / 2) cut = window.lastIndexOf('\n');
    if (cut < max / 2) cut = window.lastIndexOf(' ');
    if (cut < max / 2) {
      cut = max;
      const code = rest.charCodeAt(cut - 1);
      if (code >= 0xd800 && code <= 0xdbff) cut -= 1;
    }
    chunks.push(rest.slice(0, cut).trimEnd());
    rest = rest.slice(cut).replace(/^\s+/, '');
  }
  if (rest.trim() !== '' || chunks.length === 0) chunks.push(rest);
  return chunks.filter((chunk, i) => chunk !== '' || i === 0);
}

interface LettaMessageLike {
  message_type?: string;
  content?: unknown;
}

/** The reply to forward: every assistant_message's content (a string or [{type:'text',text}]), in order. */
export function extractReply(messages: readonly unknown[]): string {
  const parts: string[] = [];
  for (const raw of messages) {
    const message = raw as LettaMessageLike;
    if (message?.message_type !== 'assistant_message') continue;
    const content = message.content;
    if (typeof content === 'string') parts.push(content);
    else if (Array.isArray(content)) {
      const text = content
        .filter((part): part is { type: string; text: string } => typeof part === 'object' && part !== null && (part as { type?: unknown }).type === 'text' && typeof (part as { text?: unknown }).text === 'string')
        .map((part) => part.text)
        .join('');
      if (text !== '') parts.push(text);
    }
  }
  return parts.filter((p) => p.trim() !== '').join('\n\n');
}
