import type { Database } from 'better-sqlite3';
import { PLATFORMS } from '../store/inbound.js';
import type { CallOptions, LettaClient } from '../letta/client.js';
import { LettaCallError } from '../letta/errors.js';
import { pendingDetaches, recordBlockAttached, recordBlockDetached } from '../store/agent-requests.js';
import type { ClaimedItem } from '../store/work-queue.js';

/**
 * Per-user memory as Broca does it (`letta.attach_user_block`): each person gets a
 * Letta identity (sent as the message's `sender_id`) and a core memory block, made on
 * first contact and kept in `letta_users`; the block is attached to the agent for that
 * person's request only. The block id is recorded on the request row before it is
 * attached, so a block is never left on the agent for the next sender: a detach that
 * failed, or one a crash skipped, is done before the next request goes out.
 */

export interface SenderMemory {
  senderId: string;
  blockId: string;
}

/** A failure of the user's identity or block calls: `agent_requests.error_kind` user_block. */
export class UserBlockError extends Error {
  constructor(override readonly cause: LettaCallError) {
    super(cause.message);
    this.name = 'UserBlockError';
  }
}

export class UserMemory {
  constructor(
    private readonly db: Database,
    private readonly client: LettaClient,
  ) {}

  /** Detaches every block a finished request left attached; throws when one cannot be detached. */
  async detachLeftovers(call: CallOptions): Promise<void> {
    for (const blockId of pendingDetaches(this.db)) await this.detach(blockId, call);
  }

  async detach(blockId: string, call: CallOptions): Promise<void> {
    try {
      await this.client.detachBlock(blockId, call);
    } catch (error) {
      // Gone from the server, or no longer attached: nothing left on the agent.
      if (!(error instanceof LettaCallError && (error.status === 404 || error.status === 422))) throw error;
    }
    recordBlockDetached(this.db, blockId);
  }

  /** The sender's identity and block, made on first contact, the block attached for request `requestId`. */
  async attach(item: ClaimedItem, requestId: number, call: CallOptions): Promise<SenderMemory> {
    try {
      const senderId = item.lettaIdentityId ?? (await this.createIdentity(item, call));
      let blockId = item.lettaBlockId ?? (await this.createBlock(item, call));
      recordBlockAttached(this.db, requestId, blockId);
      try {
        await this.client.attachBlock(blockId, call);
      } catch (error) {
        // 404 at attach: the agent or the block. Only a lost block is made again.
        if (!(error instanceof LettaCallError && error.status === 404) || (await this.client.blockExists(blockId, call))) throw error;
        blockId = await this.createBlock(item, call);
        recordBlockAttached(this.db, requestId, blockId);
        await this.client.attachBlock(blockId, call);
      }
      return { senderId, blockId };
    } catch (error) {
      if (error instanceof LettaCallError && !error.aborted && !error.endpointFault) throw new UserBlockError(error);
      throw error;
    }
  }

  private async createIdentity(item: ClaimedItem, call: CallOptions): Promise<string> {
    const platform = item.platform ?? PLATFORMS.telegramBot;
    const id = await this.client.ensureIdentity({ identifierKey: `${platform}-${item.platformUserId ?? `user${item.lettaUserId}`}`, name: item.username ? `@${item.username}` : (item.displayName ?? `user ${item.lettaUserId}`) }, call);
    this.db.prepare('UPDATE letta_users SET letta_identity_id = ? WHERE id = ?').run(id, item.lettaUserId);
    item.lettaIdentityId = id;
    return id;
  }

  private async createBlock(item: ClaimedItem, call: CallOptions): Promise<string> {
    const value = [`Username: ${item.username ? `@${item.username}` : 'unknown'}`, `Name: ${item.displayName ?? 'unknown'}`, `${item.platform === PLATFORMS.local ? 'Local user' : 'Telegram ID'}: ${item.platformUserId ?? 'unknown'}`].join('\n');
    const blockId = await this.client.createBlock({ label: `human_${item.lettaUserId}`, value }, call);
    this.db.prepare('UPDATE letta_users SET letta_block_id = ? WHERE id = ?').run(blockId, item.lettaUserId);
    item.lettaBlockId = blockId;
    return blockId;
  }
}
