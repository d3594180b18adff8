import { userInfo } from 'node:os';
import type { Database } from 'better-sqlite3';
import { AnimusError } from '../core/errors.js';
import type { MessageMode } from '../config/settings.js';
import { readSettings } from '../instances/agent-files.js';
import { requireAgent } from '../instances/registry.js';
import { openDatabase } from '../store/database.js';
import { PLATFORMS, storeInbound } from '../store/inbound.js';
import { agentDbPath } from '../instances/db-path.js';
import { runningRuntimePid } from './lock.js';
import { pokeRuntime } from './wake-socket.js';

/**
 * `animus send`: puts a message into an agent's queue as the local platform, exactly
 * as a chat plugin would, and optionally waits for the reply the runtime stores.
 */
export interface SendOptions {
  home: string;
  id: string;
  text: string;
  wait: boolean;
  timeoutS: number;
  signal?: AbortSignal;
  /** Called once the message is stored (the CLI turns its spinner text on it). */
  onQueued?: (queued: { item: number; runtimeRunning: boolean }) => void;
  pollMs?: number;
}

export interface SendResult {
  agent: string;
  item: number;
  message: number;
  mode: MessageMode;
  status: 'queued' | 'completed';
  runtimeRunning: boolean;
  reply?: string;
  latencyMs?: number | null;
  totalTokens?: number | null;
}

export const MAX_SEND_TIMEOUT_S = 24 * 3600;

export function normalizeTimeout(raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n <= 0 || n > MAX_SEND_TIMEOUT_S) {
    throw new AnimusError('EUSAGE', `--timeout "${raw}" is not a number of seconds from 1 to ${MAX_SEND_TIMEOUT_S}`);
  }
  return n;
}

export async function sendLocalMessage(options: SendOptions): Promise<SendResult> {
  if (options.text.trim() === '') throw new AnimusError('EUSAGE', 'the message is empty: pass the text to send, e.g. animus send <id> "hello"');
  const paths = await requireAgent(options.home, options.id);
  const settings = await readSettings(paths);
  const mode = settings.message_mode;
  if (!settings.plugins.local.enabled) {
    throw new AnimusError('EEXISTS', `plugins.local is disabled for ${paths.agent.id}: enable it with \`animus settings set plugins.local.enabled true --agent ${paths.agent.id}\``);
  }
  if (mode === 'listen' && options.wait) {
    throw new AnimusError('EUSAGE', `${paths.agent.id} is in listen mode: messages are stored but never answered, so --wait would never return; drop --wait or switch the mode to live`);
  }
  // The database the runtime really uses; a DB_PATH outside the folder is refused (exit 5).
  const db = openDatabase(agentDbPath(paths));
  try {
    const user = safeUserName();
    const stored = storeInbound(db, { platform: PLATFORMS.local, platformUserId: user, username: user, displayName: `${user} (animus send)`, text: options.text });
    if (stored.status === 'ignored') {
      throw new AnimusError('EFAILED', `the local user ${user} is marked inactive for ${paths.agent.id}: activate it with \`animus users\` and send again`);
    }
    if (stored.status !== 'queued') throw new AnimusError('EFAILED', 'the message was not stored: send it again');
    const runtimeRunning = runningRuntimePid(paths.dir) !== undefined;
    if (runtimeRunning) await pokeRuntime(paths.dir);
    options.onQueued?.({ item: stored.queueId, runtimeRunning });
    const result: SendResult = { agent: paths.agent.id, item: stored.queueId, message: stored.messageId, mode, status: 'queued', runtimeRunning };
    if (!options.wait) return result;
    // Nothing will answer while the runtime is stopped: waiting out the timeout tells nothing more.
    if (!runtimeRunning) {
      throw new AnimusError('EFAILED', `${paths.agent.id}'s runtime is not running: item ${stored.queueId} is queued and will be answered once it starts (animus start ${paths.agent.id})`, {
        detail: { item: stored.queueId, status: 'queued' },
      });
    }
    return { ...result, ...(await waitForReply(db, stored.queueId, stored.messageId, { ...options, agent: paths.agent.id, runtimeRunning })) };
  } finally {
    db.close();
  }
}

async function waitForReply(
  db: Database,
  queueId: number,
  messageId: number,
  options: SendOptions & { agent: string; runtimeRunning: boolean },
): Promise<Partial<SendResult>> {
  const read = db.prepare(
    'SELECT q.status, q.last_error AS lastError, m.agent_response AS reply, m.latency_ms AS latencyMs, m.total_tokens AS totalTokens FROM messages m LEFT JOIN queue q ON q.id = ? WHERE m.id = ?',
  );
  const deadline = Date.now() + options.timeoutS * 1000;
  for (;;) {
    const row = read.get(queueId, messageId) as { status: string | null; lastError: string | null; reply: string | null; latencyMs: number | null; totalTokens: number | null } | undefined;
    if (row?.status === 'completed') return { status: 'completed', reply: row.reply ?? '', latencyMs: row.latencyMs, totalTokens: row.totalTokens };
    if (row?.status === 'failed') throw new AnimusError('EFAILED', `the agent did not answer item ${queueId}: ${row.lastError ?? 'failed'}`, { detail: { item: queueId } });
    if (!row || row.status === null || row.status === 'flushed') {
      throw new AnimusError('EFAILED', `item ${queueId} was ${row?.status === 'flushed' ? 'flushed' : 'deleted'} from the queue before it was answered`, { detail: { item: queueId } });
    }
    if (options.signal?.aborted) throw new AnimusError('EINTERRUPTED', `stopped waiting: item ${queueId} stays queued and will still be answered`);
    if (Date.now() >= deadline) {
      const hint = options.runtimeRunning
        ? `see \`animus logs ${options.agent}\``
        : `the runtime is not running: start it with \`animus start ${options.agent}\``;
      throw new AnimusError('EFAILED', `no reply within ${options.timeoutS}s; item ${queueId} stays ${row.status} (${hint})`, { detail: { item: queueId, status: row.status } });
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 50));
  }
}

function safeUserName(): string {
  try {
    return userInfo().username || 'local';
  } catch {
    return 'local';
  }
}
