import type { TelegramMessage } from './telegram-bot-api.js';

/**
 * What a Telegram message without text or caption is, as the placeholder it is stored
 * (and, with `media: placeholder`, passed to the agent) under: `[voice message]`. A
 * message of a kind not listed here is still stored, as `[message]`; only service
 * messages (members joining, a pinned message, a new title…) are not user content.
 */
const MEDIA: ReadonlyArray<[key: string, name: string]> = [
  ['voice', 'voice message'],
  ['video_note', 'video message'],
  ['sticker', 'sticker'],
  ['animation', 'GIF'],
  ['photo', 'photo'],
  ['video', 'video'],
  ['audio', 'audio file'],
  ['document', 'file'],
  ['location', 'location'],
  ['venue', 'venue'],
  ['contact', 'contact'],
  ['poll', 'poll'],
  ['dice', 'dice'],
  ['game', 'game'],
  ['story', 'story'],
];

const SERVICE = /^(new_chat_|left_chat_member|delete_chat_photo|group_chat_created|supergroup_chat_created|channel_chat_created|message_auto_delete_timer_changed|pinned_message|video_chat_|forum_topic_|general_forum_topic_|write_access_allowed|boost_added|chat_background_set|users_shared|chat_shared|proximity_alert_triggered|giveaway|successful_payment|refunded_payment|connected_website|passport_data|web_app_data)/;

export function mediaPlaceholder(message: TelegramMessage): string | undefined {
  for (const [key, name] of MEDIA) if (message[key] !== undefined) return `[${name}]`;
  if (Object.keys(message).some((key) => SERVICE.test(key))) return undefined;
  return '[message]';
}
