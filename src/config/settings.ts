import { AnimusError } from '../core/errors.js';

/**
 * settings.json: the one schema for an agent's settings, used by deploy, the
 * runtime, `settings show|set`, health and adopt. Keys follow Broca's flat names
 * (`message_mode`, `queue_refresh`, `max_retries`, `debug_mode`, `plugins`) so a
 * Broca operator reads it without a glossary.
 */

export const MESSAGE_MODES = ['echo', 'listen', 'live'] as const;
export type MessageMode = (typeof MESSAGE_MODES)[number];

export const PROCESS_MANAGERS = ['pm2', 'systemd', 'kubernetes'] as const;
export type ProcessManagerName = (typeof PROCESS_MANAGERS)[number];
/** The managers a new agent can be deployed under; `kubernetes` is reached only by `animus kubernetes push`. */
export const LOCAL_PROCESS_MANAGERS = ['pm2', 'systemd'] as const;

export const PARSE_MODES = ['Markdown', 'MarkdownV2', 'HTML', 'none'] as const;
export type ParseMode = (typeof PARSE_MODES)[number];

/** What the bot does with a message that has no text or caption (voice, sticker, photo alone, document, …). */
export const MEDIA_MODES = ['reply', 'placeholder'] as const;
export type MediaMode = (typeof MEDIA_MODES)[number];

export const LOG_TARGETS = ['file', 'journal'] as const;
export type LogTarget = (typeof LOG_TARGETS)[number];

/** What the runtime answers when a tool asks for approval: deny (default), approve (dangerous), hold for an operator. */
export const APPROVAL_POLICIES = ['deny', 'approve', 'hold'] as const;
export type ApprovalPolicy = (typeof APPROVAL_POLICIES)[number];

export const PLUGIN_NAMES = ['telegram_bot', 'telegram_user', 'local'] as const;
export type PluginName = (typeof PLUGIN_NAMES)[number];

export interface Settings {
  agent: { id: string; name: string; description: string };
  /** echo: reply with the formatted input; listen: store only; live: ask the agent. Hot-reloaded. */
  message_mode: MessageMode;
  debug_mode: boolean;
  /** Seconds between queue polls when the queue is idle. */
  queue_refresh: number;
  /** Retries of a failed agent request before the item is marked failed. */
  max_retries: number;
  process_manager: ProcessManagerName;
  /** The process manager restarts the instance above this resident memory. */
  memory_limit_mb: number;
  /** Where the instance's stdout goes under systemd (PM2 always writes to logs/). */
  log_target: LogTarget;
  /** logs/runtime.log is rotated when it would grow past this many MiB (the runtime rotates it itself). */
  log_max_mb: number;
  /** Rotated logs kept, gzip-compressed (runtime.log.1.gz newest). */
  log_keep: number;
  letta: {
    /** Seconds one HTTP call to Letta may take; a run slower than this is waited for, never sent again. */
    timeout_s: number;
    /** Seconds a run may go on before the runtime cancels it and retries the message later. */
    run_timeout_s: number;
    /** Tool approval requests: deny (answer no, go on), approve (automatic: dangerous), hold (wait for `animus approvals`). */
    approvals: ApprovalPolicy;
    /** Attach the sender's core memory block for the duration of each request, as Broca does. */
    attach_user_block: boolean;
  };
  plugins: {
    telegram_bot: {
      enabled: boolean;
      parse_mode: ParseMode;
      require_owner: boolean;
      /** reply: answer media_reply and keep the message (with a placeholder text); placeholder: pass `[voice message]` etc. to the agent. */
      media: MediaMode;
      media_reply: string;
    };
    telegram_user: { enabled: boolean; catch_up_limit: number; allow_groups: boolean };
    local: { enabled: boolean };
  };
}

type FieldType =
  | { kind: 'string' }
  | { kind: 'boolean' }
  | { kind: 'integer'; min: number; max: number }
  | { kind: 'number'; min: number; max: number }
  | { kind: 'enum'; values: readonly string[] };

export interface SettingsField {
  path: string;
  type: FieldType;
  description: string;
  /** Fields that `settings set` refuses (changing them would orphan the folder). */
  readOnly?: boolean;
  /** Read by the process manager, not the runtime: a change applies at the next restart. */
  atRestart?: boolean;
}

/** Every settings key, its type and meaning: validation, `settings set` and docs derive from this. */
export const SETTINGS_FIELDS: readonly SettingsField[] = [
  { path: 'agent.id', type: { kind: 'string' }, description: 'Letta agent id (agent-<uuid>); matches the folder name', readOnly: true },
  { path: 'agent.name', type: { kind: 'string' }, description: 'display name' },
  { path: 'agent.description', type: { kind: 'string' }, description: 'free text' },
  { path: 'message_mode', type: { kind: 'enum', values: MESSAGE_MODES }, description: 'echo | listen | live; hot-reloaded' },
  { path: 'debug_mode', type: { kind: 'boolean' }, description: 'verbose logs' },
  { path: 'queue_refresh', type: { kind: 'number', min: 0.05, max: 3600 }, description: 'seconds between polls of an idle queue' },
  { path: 'max_retries', type: { kind: 'integer', min: 0, max: 100 }, description: 'agent request retries before an item fails' },
  { path: 'process_manager', type: { kind: 'enum', values: PROCESS_MANAGERS }, description: 'pm2 | systemd | kubernetes (set by `animus kubernetes push`)', atRestart: true },
  { path: 'memory_limit_mb', type: { kind: 'integer', min: 32, max: 65536 }, description: 'restart the instance above this RSS', atRestart: true },
  { path: 'log_target', type: { kind: 'enum', values: LOG_TARGETS }, description: 'file (logs/) | journal (systemd only)', atRestart: true },
  { path: 'log_max_mb', type: { kind: 'number', min: 0.01, max: 1024 }, description: 'rotate logs/runtime.log above this size (MiB; fractions allowed)', atRestart: true },
  { path: 'log_keep', type: { kind: 'integer', min: 0, max: 100 }, description: 'rotated logs kept, gzip-compressed', atRestart: true },
  { path: 'letta.timeout_s', type: { kind: 'number', min: 0.1, max: 3600 }, description: 'seconds one call to Letta may take, and the longest silence of a run\'s stream (a slower run is waited for, never sent twice)' },
  { path: 'letta.run_timeout_s', type: { kind: 'number', min: 1, max: 86400 }, description: 'seconds a run may go on before it is cancelled and retried later' },
  { path: 'letta.approvals', type: { kind: 'enum', values: APPROVAL_POLICIES }, description: 'tool approvals: deny | approve (dangerous: runs any tool) | hold (for `animus approvals`)' },
  { path: 'letta.attach_user_block', type: { kind: 'boolean' }, description: "attach the sender's core memory block per request" },
  { path: 'plugins.telegram_bot.enabled', type: { kind: 'boolean' }, description: 'Telegram bot (TELEGRAM_BOT_TOKEN)' },
  { path: 'plugins.telegram_bot.parse_mode', type: { kind: 'enum', values: PARSE_MODES }, description: 'reply formatting, plain text fallback' },
  { path: 'plugins.telegram_bot.require_owner', type: { kind: 'boolean' }, description: 'answer only TELEGRAM_OWNER_ID/_USERNAME' },
  { path: 'plugins.telegram_bot.media', type: { kind: 'enum', values: MEDIA_MODES }, description: 'messages without text: reply (answer media_reply) | placeholder (the agent gets "[voice message]")' },
  { path: 'plugins.telegram_bot.media_reply', type: { kind: 'string' }, description: 'the answer to a message without text (media: reply)' },
  { path: 'plugins.telegram_user.enabled', type: { kind: 'boolean' }, description: 'Telegram user account over MTProto' },
  { path: 'plugins.telegram_user.catch_up_limit', type: { kind: 'integer', min: 0, max: 1000 }, description: 'recent messages per chat read at start' },
  { path: 'plugins.telegram_user.allow_groups', type: { kind: 'boolean' }, description: 'also answer messages in groups (default: private chats only)' },
  { path: 'plugins.local.enabled', type: { kind: 'boolean' }, description: 'messages from `animus send`' },
];

export const DEFAULT_MEDIA_REPLY = 'I can only read text messages.';

export interface SettingsInit {
  agentId: string;
  name?: string;
  description?: string;
  mode?: MessageMode;
  processManager?: ProcessManagerName;
}

export function defaultSettings(init: SettingsInit): Settings {
  return {
    agent: { id: init.agentId, name: init.name ?? '', description: init.description ?? '' },
    message_mode: init.mode ?? 'live',
    debug_mode: false,
    queue_refresh: 1,
    max_retries: 3,
    process_manager: init.processManager ?? 'pm2',
    memory_limit_mb: 256,
    log_target: 'file',
    log_max_mb: 10,
    log_keep: 5,
    letta: { timeout_s: 120, run_timeout_s: 600, approvals: 'deny', attach_user_block: false },
    plugins: {
      telegram_bot: { enabled: false, parse_mode: 'Markdown', require_owner: false, media: 'reply', media_reply: DEFAULT_MEDIA_REPLY },
      telegram_user: { enabled: false, catch_up_limit: 20, allow_groups: false },
      local: { enabled: true },
    },
  };
}

export function parseSettingsJson(text: string, source: string): Settings {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new AnimusError('EBADSETTINGS', `${source} is not valid JSON (${(error as Error).message}): fix the file or restore it from a backup`, { cause: error });
  }
  return validateSettings(raw, source);
}

/**
 * Checks a parsed settings document against SETTINGS_FIELDS. Missing keys take their
 * defaults (files written by older versions stay valid); wrong types and unknown keys
 * are errors, all reported at once in one line.
 */
export function validateSettings(raw: unknown, source: string): Settings {
  if (!isObject(raw)) throw new AnimusError('EBADSETTINGS', `${source} must hold a JSON object`);
  const problems: string[] = [];
  const agentId = getPath(raw, 'agent.id');
  if (typeof agentId !== 'string' || agentId === '') problems.push('agent.id is missing');
  const settings = defaultSettings({ agentId: typeof agentId === 'string' ? agentId : '' }) as unknown as Record<string, unknown>;
  for (const field of SETTINGS_FIELDS) {
    const value = getPath(raw, field.path);
    if (value === undefined) continue;
    const problem = checkType(value, field.type);
    if (problem) problems.push(`${field.path} ${problem}`);
    else setPath(settings, field.path, value);
  }
  for (const key of unknownKeys(raw)) problems.push(`unknown key ${key}`);
  if (problems.length > 0) {
    throw new AnimusError('EBADSETTINGS', `${source}: ${problems.join('; ')}`, { detail: { problems } });
  }
  return settings as unknown as Settings;
}

export function findSettingsField(path: string): SettingsField | undefined {
  return SETTINGS_FIELDS.find((field) => field.path === path);
}

/** `settings set key value`: parses the text value by the field's type and returns new settings. */
export function setSetting(settings: Settings, path: string, text: string): Settings {
  const field = findSettingsField(path);
  if (!field) {
    throw new AnimusError('EUSAGE', `unknown setting "${path}": run \`animus settings show --agent <id>\` to see the keys`);
  }
  if (field.readOnly) throw new AnimusError('EUSAGE', `${path} cannot be changed`);
  const value = coerce(text, field.type);
  const problem = value === undefined ? describeType(field.type) : checkType(value, field.type);
  if (problem) throw new AnimusError('EUSAGE', `invalid value "${text}" for ${path}: ${problem.replace(/^must be /, 'expected ')}`);
  const copy = structuredClone(settings) as unknown as Record<string, unknown>;
  setPath(copy, path, value);
  return copy as unknown as Settings;
}

export function getSetting(settings: Settings, path: string): unknown {
  return getPath(settings as unknown as Record<string, unknown>, path);
}

export function serializeSettings(settings: Settings): string {
  return `${JSON.stringify(settings, null, 2)}\n`;
}

function coerce(text: string, type: FieldType): unknown {
  switch (type.kind) {
    case 'string':
    case 'enum':
      return text;
    case 'boolean':
      if (/^(true|on|yes|1)$/i.test(text)) return true;
      if (/^(false|off|no|0)$/i.test(text)) return false;
      return undefined;
    case 'integer':
    case 'number': {
      const n = Number(text);
      return text.trim() === '' || Number.isNaN(n) ? undefined : n;
    }
  }
}

function checkType(value: unknown, type: FieldType): string | undefined {
  switch (type.kind) {
    case 'string':
      return typeof value === 'string' ? undefined : 'must be a string';
    case 'boolean':
      return typeof value === 'boolean' ? undefined : 'must be true or false';
    case 'enum':
      return typeof value === 'string' && type.values.includes(value) ? undefined : `must be one of ${type.values.join(', ')}`;
    case 'integer':
    case 'number': {
      const ok = typeof value === 'number' && Number.isFinite(value) && (type.kind === 'number' || Number.isInteger(value));
      return ok && (value as number) >= type.min && (value as number) <= type.max ? undefined : describeType(type);
    }
  }
}

function describeType(type: FieldType): string {
  switch (type.kind) {
    case 'string':
      return 'must be a string';
    case 'boolean':
      return 'must be true or false';
    case 'enum':
      return `must be one of ${type.values.join(', ')}`;
    case 'integer':
      return `must be a whole number from ${type.min} to ${type.max}`;
    case 'number':
      return `must be a number from ${type.min} to ${type.max}`;
  }
}

/** Paths present in raw that no field and no parent object of a field accounts for. */
function unknownKeys(raw: Record<string, unknown>, prefix = ''): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(raw)) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    if (SETTINGS_FIELDS.some((field) => field.path === path)) continue;
    const isParent = SETTINGS_FIELDS.some((field) => field.path.startsWith(`${path}.`));
    if (isParent && isObject(value)) out.push(...unknownKeys(value, path));
    else if (isParent) out.push(`${path} (must be an object)`);
    else out.push(path);
  }
  return out;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function getPath(obj: Record<string, unknown>, path: string): unknown {
  let current: unknown = obj;
  for (const part of path.split('.')) {
    if (!isObject(current)) return undefined;
    current = current[part];
  }
  return current;
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let current = obj;
  for (const part of parts.slice(0, -1)) {
    if (!isObject(current[part])) current[part] = {};
    current = current[part] as Record<string, unknown>;
  }
  current[parts[parts.length - 1]!] = value;
}
