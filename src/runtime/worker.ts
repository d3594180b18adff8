import type { Database } from 'better-sqlite3';
import type { Settings } from '../config/settings.js';
import type { LettaClient, OutgoingMessage } from '../letta/client.js';
import { LettaCallError, type ErrorKind } from '../letta/errors.js';
import { isNormalEnd, stopHandling, stopReasonText } from '../letta/stop-reasons.js';
import {
  finishRequest,
  getRequest,
  insertRequest,
  openRequest,
  pendingDetaches,
  setApproval,
  type ApprovalRecord,
  type RequestErrorKind,
  type RequestRow,
} from '../store/agent-requests.js';
import { claimNext, completeItem, failItem, nextDueAt, recoverStale, releaseItem, resumeItem, retryItem, type ClaimedItem, type Usage } from '../store/work-queue.js';
import { RunDriver, type RunResult } from './agent-runs.js';
import { approvalMessage, describeToolCalls, findApprovalRequest, policyDecision, unansweredApprovalRequest } from './approvals.js';
import { backoffDelay } from './backoff.js';
import type { CircuitBreaker } from './circuit-breaker.js';
import { extractReply, formatAgentInput } from './format.js';
import type { LettaState } from './letta-state.js';
import { errorText, type Logger } from './logger.js';
import { Sleeper } from './sleeper.js';
import { UserBlockError, UserMemory } from './user-memory.js';
import { isoTime } from '../core/time.js';
import { PLATFORMS } from '../store/inbound.js';

/**
 * The queue processor: one agent run in flight per agent (Letta: concurrent requests
 * to one agent are undefined behaviour), oldest due item first. An item's conversation
 * with the agent (its message, then any approval answers) goes through recorded
 * requests (`agent_requests`); an open one is finished before anything new is sent,
 * after a restart too. A failed request puts its item back with a due time and the
 * worker goes on with other items; it never sleeps holding the lane.
 */
export interface WorkerOptions {
  db: Database;
  logger: Logger;
  agentId: string;
  settings: () => Settings;
  /** The Letta client, created on first live use. */
  client: () => Promise<LettaClient>;
  breaker: CircuitBreaker;
  state: LettaState;
  redact: (text: string) => string;
  retryBaseMs: number;
  retryMaxMs: number;
  /** A 429 without Retry-After: a provider's rate limit lasts tens of seconds. */
  rateLimitBaseMs: number;
  pollMaxMs: number;
  /** How often items left `processing` by a crash are looked for while running. */
  recoverEveryMs: number;
  /** A reply was stored: wake the delivery worker. */
  onReply: () => void;
}

interface InFlight {
  queueId: number;
  controller: AbortController;
  done: Promise<void>;
}

/** Approval requests answered for one item before it fails (a tool loop that keeps asking). */
const MAX_APPROVALS = 10;
/** The agent's latest messages read at start for an unanswered approval request (the request ends its run, so it is among the newest). */
const LEFT_APPROVAL_WINDOW = 20;

type Next = { row: RequestRow } | { sendMessage: true } | { done: true };

interface Failure {
  message: string;
  kind: RequestErrorKind;
  status?: number;
  retryable: boolean;
  retryAfterMs?: number;
  endpointFault: boolean;
  stopReason?: string | null;
}

export class QueueWorker {
  private readonly sleeper = new Sleeper();
  private stopping = false;
  private inFlight: InFlight | undefined;
  private lastRecovery = Date.now();
  private laneChecked = false;
  private heldLogged: number | undefined;
  private readonly driver: RunDriver;
  private memory: UserMemory | undefined;

  constructor(private readonly options: WorkerOptions) {
    const { logger, breaker, redact } = options;
    this.driver = new RunDriver({
      db: options.db,
      client: options.client,
      timeoutMs: () => options.settings().letta.timeout_s * 1000,
      runTimeoutMs: () => options.settings().letta.run_timeout_s * 1000,
      pollMaxMs: options.pollMaxMs,
      // As long as a call may take (the server held it that long unanswered), from 2 s to 30 s.
      settleMs: () => Math.min(LATE_LANDING_MS, Math.max(2000, options.settings().letta.timeout_s * 1000)),
      onEndpointFault: () => breaker.failure(),
      onEndpointOk: () => breaker.success(),
      onWaitProblem: (what, error, retryInMs) => logger.warn('Letta call failed while a run may be going on; looking again (never sending twice)', { run: what, retry_in_ms: retryInMs, error: redact(error.message) }),
      onStreamLost: (run, error) => logger.info("the run's stream broke off; following the run by polling", { run, error: redact(error.message) }),
      onStreamUnavailable: (error) => logger.warn('Letta offers no background streams here: runs are sent async and polled, which adds up to a second to each reply', { error: redact(error.message) }),
    });
  }

  wake(): void {
    this.sleeper.wake();
  }

  /** Items left `processing` by a runtime that died (all of them at start: the pid lock says none is ours), except those with an open request. */
  recover(claimedBefore: number = Number.POSITIVE_INFINITY): void {
    const { db, logger, settings } = this.options;
    const result = recoverStale(db, { maxAttempts: settings().max_retries + 1, claimedBefore, exceptId: this.inFlight?.queueId });
    for (const id of result.requeued) logger.warn('item left processing by a stopped runtime returned to the queue', { item: id });
    for (const id of result.failed) logger.error('item left processing by a stopped runtime has used its attempts: failed', { item: id });
    this.lastRecovery = Date.now();
  }

  async run(): Promise<void> {
    while (!this.stopping) {
      try {
        await this.step();
      } catch (error) {
        if (this.stopping) break;
        // A database that stays locked, a full disk, Letta unreachable while settling the lane: keep the process, try again shortly.
        this.options.logger.error('queue worker error; retrying shortly', { error: this.options.redact(errorText(error)) });
        await this.sleeper.sleep(Math.max(1000, this.options.settings().queue_refresh * 1000));
      }
    }
  }

  private async step(): Promise<void> {
    const { db, settings, breaker } = this.options;
    const current = settings();
    const refreshMs = current.queue_refresh * 1000;
    if (Date.now() - this.lastRecovery >= this.options.recoverEveryMs) {
      this.recover(Date.now() - (current.letta.timeout_s * 1000 + this.options.recoverEveryMs));
    }
    // listen: messages are stored and stay pending; nothing is sent to the agent.
    if (current.message_mode === 'listen') {
      await this.sleeper.sleep(refreshMs);
      return;
    }
    const live = current.message_mode === 'live';
    if (live && !breaker.allow()) {
      await this.sleeper.sleep(Math.min(refreshMs, Math.max(0, breaker.retryAt - Date.now())) || refreshMs);
      return;
    }
    if (live) {
      // The lane first: a run going on, an unresolved send or a held approval.
      const open = openRequest(db);
      if (open) {
        const held = await this.track(open.queueId ?? -1, (signal) => this.resume(open, current, signal));
        if (held) await this.sleeper.sleep(refreshMs);
        return;
      }
      this.options.state.awaitingApproval(undefined);
      if (!this.laneChecked) {
        try {
          await this.track(-1, async (signal) => {
            const waited = await this.driver.settleActive(signal);
            if (waited.length > 0) this.options.logger.warn('waited for runs already going on the agent before sending anything', { runs: waited });
            await this.lookForLeftApproval(current, signal);
            return false;
          });
          this.laneChecked = true;
        } catch (error) {
          // A key or agent Letta refuses: no run can exist or start, so the message goes out and fails visibly (401, 404).
          if (!(error instanceof LettaCallError && error.kind === 'http_4xx' && !error.retryable)) throw error;
          if (error.status === 401 || error.status === 403) this.options.state.refusedKey(error.message);
          this.options.logger.error('Letta refuses to list the agent\'s runs', { status: error.status, error: this.options.redact(error.message) });
        }
      }
      if (pendingDetaches(db).length > 0 && !(await this.detachLeftovers(true))) {
        await this.sleeper.sleep(Math.max(refreshMs, 1000));
        return;
      }
    }
    const claimed = live ? this.claimWithRequest() : { item: claimNext(db), requestId: undefined };
    const item = claimed.item;
    if (!item) {
      const due = nextDueAt(db);
      await this.sleeper.sleep(due === undefined ? refreshMs : Math.min(refreshMs, Math.max(1, due - Date.now())));
      return;
    }
    await this.track(item.queueId, (signal) => this.process(item, current, signal, claimed.requestId));
  }

  /**
   * Claims the next item and records its message request in one write: a live item is
   * never processing without the request that says what became of it, and the commit a
   * message costs is one fewer.
   */
  private claimWithRequest(): { item: ClaimedItem | undefined; requestId: number | undefined } {
    const { db, agentId } = this.options;
    return db
      .transaction(() => {
        const item = claimNext(db);
        if (!item || item.messageId === null || item.text === null) return { item, requestId: undefined };
        const requestId = insertRequest(db, { queueId: item.queueId, messageId: item.messageId, attempt: item.attempts, kind: 'message', otid: otidFor(agentId, 'message', item.queueId) });
        return { item, requestId };
      })
      .immediate();
  }

  /**
   * An approval left unanswered on the agent before this runtime started blocks every
   * message (409 PENDING_APPROVAL) until the first send finds it; one look at the agent's
   * latest messages at start lets status and health say so at once. Only a hint: the
   * 409 stays what acts on it, so a failed look is logged and forgotten.
   */
  private async lookForLeftApproval(settings: Settings, signal: AbortSignal): Promise<void> {
    const { logger, state, redact } = this.options;
    try {
      const client = await this.options.client();
      const pending = unansweredApprovalRequest(await client.recentMessages(LEFT_APPROVAL_WINDOW, this.call(settings, signal)));
      if (!pending) return;
      const tools = describeToolCalls(pending.toolCalls);
      state.approvalLeftPending({ tools, since: pending.since, policy: settings.letta.approvals });
      logger.warn('the agent has a tool approval pending from before this runtime started: Letta refuses new messages until it is answered', { tools, since: pending.since ?? undefined, policy: settings.letta.approvals });
    } catch (error) {
      if (error instanceof LettaCallError && error.aborted) throw error;
      logger.warn('could not read the agent\'s latest messages to look for a pending tool approval; the first message finds it', { error: redact(errorText(error)) });
    }
  }

  /** Runs one piece of lane work so that stop() can let it finish or abort it. */
  private async track(queueId: number, work: (signal: AbortSignal) => Promise<boolean | void>): Promise<boolean | void> {
    const controller = new AbortController();
    let result: boolean | void = undefined;
    const done = work(controller.signal).then((value) => {
      result = value;
    });
    this.inFlight = { queueId, controller, done };
    try {
      await done;
    } catch (error) {
      if (error instanceof LettaCallError && error.aborted) return;
      throw error;
    } finally {
      this.inFlight = undefined;
    }
    return result;
  }

  /** Lets the in-flight work finish for up to graceMs, then aborts it: a run going on is resumed at the next start. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    this.sleeper.wake();
    const inFlight = this.inFlight;
    if (!inFlight) return;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'expired'>((resolve) => {
      timer = setTimeout(() => resolve('expired'), graceMs);
    });
    const settled = inFlight.done.then(
      () => 'done' as const,
      () => 'done' as const,
    );
    const outcome = await Promise.race([settled, expired]);
    clearTimeout(timer);
    if (outcome === 'expired') {
      inFlight.controller.abort();
      await settled;
    }
  }

  /** `requestId`: the message request recorded with the claim, not sent yet. */
  private async process(item: ClaimedItem, settings: Settings, signal: AbortSignal, requestId?: number): Promise<void> {
    const { db, logger } = this.options;
    if (item.messageId === null || item.text === null) {
      failItem(db, item.queueId, 'the queue item has no message row');
      logger.error('item has no message: failed', { item: item.queueId });
      return;
    }
    if (settings.message_mode === 'echo') {
      const started = performance.now();
      const reply = formatAgentInput(item, item.text);
      completeItem(db, { queueId: item.queueId, messageId: item.messageId, reply, latencyMs: performance.now() - started, deliveredByStoring: isLocal(item) });
      logger.info('item completed', { item: item.queueId, mode: 'echo', attempt: item.attempts, latency_ms: 0, reply_chars: reply.length });
      if (!isLocal(item)) this.options.onReply();
      return;
    }
    try {
      await this.converse(item, settings, signal, undefined, requestId);
    } catch (error) {
      this.interrupted(item, error);
    }
  }

  /** Resumes the open request; resolves true while an approval is held for an operator. */
  private async resume(open: RequestRow, settings: Settings, signal: AbortSignal): Promise<boolean> {
    const { db, logger } = this.options;
    const item = open.queueId === null ? undefined : resumeItem(db, open.queueId);
    if (!item || item.messageId === null || item.text === null) {
      // The item was deleted, flushed or failed by an operator meanwhile: its run still
      // has to end before anything else is sent; a held approval is found again (409) at the next send.
      if (open.runId) await this.driver.finish(open.runId, open.startedAt ?? Date.now(), signal);
      else if (open.outcome === 'sending') await this.driver.resolveUnsent(open, signal, sentRecently(open));
      finishRequest(db, open.id, { outcome: 'abandoned', error: 'the queue item was removed while its request was open' });
      logger.warn('request of a removed queue item closed', { item: open.queueId ?? undefined, run: open.runId ?? undefined });
      return false;
    }
    if (open.outcome !== 'awaiting_approval') logger.info('resuming the open agent request (not sending again)', { item: item.queueId, run: open.runId ?? undefined, outcome: open.outcome });
    try {
      return await this.converse(item, settings, signal, open);
    } catch (error) {
      this.interrupted(item, error);
      return false;
    }
  }

  /** Stopping, or a fault that is not Letta's: an open request stays open (resumed later), otherwise the item goes back. */
  private interrupted(item: ClaimedItem, error: unknown): void {
    const { db, logger } = this.options;
    const open = openRequest(db);
    const aborted = error instanceof LettaCallError && error.aborted;
    if (open && open.queueId === item.queueId) {
      if (aborted) logger.info('runtime stopping: the agent request stays open and is resumed at the next start', { item: item.queueId, run: open.runId ?? undefined });
      else throw error;
      return;
    }
    if (aborted) {
      releaseItem(db, item.queueId);
      logger.info('item returned to the queue: the runtime is stopping', { item: item.queueId });
      return;
    }
    throw error;
  }

  /**
   * One item's conversation: its message as a run, any approval answers as further
   * runs, until it has a reply, is retried later, fails, or waits for an operator
   * (resolves true then). Every request is recorded before it is sent.
   */
  private async converse(item: ClaimedItem, settings: Settings, signal: AbortSignal, open: RequestRow | undefined, unsent?: number): Promise<boolean> {
    const { db, agentId } = this.options;
    const client = await this.options.client();
    const input = formatAgentInput(item, item.text!);
    const conversationStart = open?.startedAt ?? Date.now();
    const usage: Usage = { promptTokens: null, completionTokens: null, totalTokens: null };
    let row = open;
    let approvals = 0;
    let held = false;
    try {
      for (;;) {
        if (!row) {
          const otid = otidFor(agentId, 'message', item.queueId);
          const id = unsent ?? insertRequest(db, { queueId: item.queueId, messageId: item.messageId, attempt: item.attempts, kind: 'message', otid });
          unsent = undefined;
          let senderId: string | undefined;
          if (settings.letta.attach_user_block && item.lettaUserId !== null) {
            this.memory ??= new UserMemory(db, client);
            try {
              senderId = (await this.memory.attach(item, id, this.call(settings, signal))).senderId;
            } catch (error) {
              this.fail(getRequest(db, id)!, item, settings, asFailure(error));
              return false;
            }
          }
          const fresh = getRequest(db, id)!;
          const message: OutgoingMessage = { role: 'user', content: input, otid, ...(senderId ? { sender_id: senderId } : {}) };
          const next = await this.send(fresh, [[message]], item, settings, signal);
          if ('done' in next) return false;
          if ('sendMessage' in next) continue;
          row = next.row;
          continue;
        }
        if (row.outcome === 'awaiting_approval') {
          const decided = this.decide(row, item, settings);
          if (!decided) {
            held = true;
            return true;
          }
          approvals++;
          const answer = decided.approval!;
          const variants = [[approvalMessage(answer, decided.otid!)], ...(answer.requestId ? [[approvalMessage(answer, decided.otid!, true)]] : [])];
          const next = await this.send(decided, variants, item, settings, signal);
          if ('done' in next) return false;
          if ('sendMessage' in next) {
            row = undefined;
            continue;
          }
          row = next.row;
          continue;
        }
        if (row.outcome === 'sending') {
          const runId = await this.driver.resolveUnsent(row, signal, sentRecently(row));
          if (!runId) {
            finishRequest(db, row.id, { outcome: 'abandoned', error: 'never reached Letta (no run was started): sent again' });
            this.options.logger.warn('an unanswered send never reached Letta; sending it again', { item: item.queueId, kind: row.kind });
            if (row.kind === 'approval' && row.approval) {
              const again = insertRequest(db, { queueId: item.queueId, messageId: item.messageId, attempt: item.attempts, kind: 'approval', otid: row.otid!, approval: row.approval });
              setApproval(db, again, row.approval, 'awaiting_approval');
              row = getRequest(db, again);
            } else row = undefined;
            continue;
          }
          this.options.logger.info('an unanswered send had started a run: following it instead of sending again', { item: item.queueId, run: runId });
          row = getRequest(db, row.id)!;
        }
        const result = await this.driver.finish(row.runId!, row.startedAt ?? Date.now(), signal);
        if (result.pendingApproval) {
          const next = await this.pendingApproval(row, item, result.pendingApproval, signal);
          if ('done' in next) return false;
          if ('sendMessage' in next) row = undefined;
          else row = next.row;
          continue;
        }
        addUsage(usage, result.usage);
        const next = this.conclude(row, result, item, settings, usage, conversationStart, approvals);
        if ('done' in next) return false;
        if ('sendMessage' in next) {
          row = undefined;
          continue;
        }
        row = next.row;
      }
    } finally {
      if (!held && !signal.aborted && settings.letta.attach_user_block) await this.detachLeftovers(false);
    }
  }

  /** The decision for a held approval (an operator's, else the policy's), recorded; undefined while it stays held. */
  private decide(row: RequestRow, item: ClaimedItem, settings: Settings): RequestRow | undefined {
    const { db, logger, state } = this.options;
    const approval = row.approval ?? { toolCalls: [], requestId: null };
    const decision = approval.decision ?? policyDecision(settings.letta.approvals);
    const tools = describeToolCalls(approval.toolCalls);
    if (!decision) {
      state.awaitingApproval({ item: item.queueId, tools, since: isoTime(row.startedAt ?? Date.now()) });
      if (this.heldLogged !== row.id) {
        this.heldLogged = row.id;
        logger.warn('agent awaiting approval: nothing is sent to it until an operator answers (`animus approvals`)', { item: item.queueId, tools });
      }
      return undefined;
    }
    state.awaitingApproval(undefined);
    const answered: ApprovalRecord = { ...approval, decision };
    setApproval(db, row.id, answered, 'sending');
    logger.info(decision.approve ? 'tool call approved' : 'tool call denied', { item: item.queueId, tools, by: decision.by, reason: decision.reason });
    return getRequest(db, row.id);
  }

  /** Sends a recorded request (trying each message form in turn on 400/422) and says what comes next. */
  private async send(row: RequestRow, variants: OutgoingMessage[][], item: ClaimedItem, settings: Settings, signal: AbortSignal): Promise<Next> {
    const { db, logger } = this.options;
    for (let i = 0; ; i++) {
      try {
        await this.driver.start(row, variants[i]!, signal);
        // Letta took a message: no approval pends on the agent any more.
        this.options.state.approvalLeftPending(undefined);
        return { row: getRequest(db, row.id)! };
      } catch (error) {
        if (!(error instanceof LettaCallError) || error.aborted) throw error;
        if ((error.status === 400 || error.status === 422) && i + 1 < variants.length) {
          logger.info('Letta refused the approval answer in its current form; sending the older form', { item: item.queueId, status: error.status });
          continue;
        }
        if (error.status === 409 && error.code === 'PENDING_APPROVAL') return this.pendingApproval(row, item, error, signal);
        // No answer, or a 5xx a proxy may have made up: the run may exist. Find out before anything is sent again.
        if (error.kind === 'timeout' || error.kind === 'connection' || error.kind === 'http_5xx') {
          if (error.endpointFault) this.options.breaker.failure();
          // Unanswered, or a gateway that gave up waiting: the POST may still become a run.
          const runId = await this.driver.resolveUnsent(row, signal, error.kind !== 'http_5xx' || error.status === 504);
          if (runId) {
            logger.info('the unanswered send had started a run: following it', { item: item.queueId, run: runId, error: this.options.redact(error.message) });
            return { row: getRequest(db, row.id)! };
          }
        }
        this.fail(row, item, settings, asFailure(error));
        return { done: true };
      }
    }
  }

  /** 409 PENDING_APPROVAL: the agent waits for an answer to a request this item did not see; the policy answers it first. */
  private async pendingApproval(row: RequestRow, item: ClaimedItem, error: LettaCallError, signal: AbortSignal): Promise<Next> {
    const { db, logger } = this.options;
    finishRequest(db, row.id, { outcome: 'abandoned', httpStatus: 409, errorKind: 'approval', error: this.options.redact(error.message) });
    // From here the approval is this item's (answered by the policy, or held and shown as awaiting).
    this.options.state.approvalLeftPending(undefined);
    const client = await this.options.client();
    const recent = await client.recentMessages(20, { signal, timeoutMs: this.options.settings().letta.timeout_s * 1000 });
    const request = findApprovalRequest(recent, true);
    if (!request || request.toolCalls.length === 0) {
      const again = insertRequest(db, { queueId: item.queueId, messageId: item.messageId, attempt: item.attempts, kind: 'approval', otid: otidFor(this.options.agentId, 'orphan', item.queueId) });
      this.fail(getRequest(db, again)!, item, this.options.settings(), {
        message: 'the agent waits for a tool approval that Letta does not show (409 PENDING_APPROVAL): answer it in Letta, then `animus queue retry`',
        kind: 'approval',
        status: 409,
        retryable: false,
        endpointFault: false,
      });
      return { done: true };
    }
    logger.warn('the agent has a tool approval pending from before (409 PENDING_APPROVAL): answering it by the policy first', { item: item.queueId, tools: describeToolCalls(request.toolCalls) });
    const approval: ApprovalRecord = { ...request, orphan: true };
    const id = insertRequest(db, { queueId: item.queueId, messageId: item.messageId, attempt: item.attempts, kind: 'approval', otid: otidFor(this.options.agentId, 'approval', ...request.toolCalls.map((c) => c.tool_call_id)), approval });
    setApproval(db, id, approval, 'awaiting_approval');
    return { row: getRequest(db, id)! };
  }

  /** A run ended: its stop reason decides what the item's user sees. */
  private conclude(row: RequestRow, result: RunResult, item: ClaimedItem, settings: Settings, usage: Usage, conversationStart: number, approvals: number): Next {
    const { db, logger, state } = this.options;
    const reason = result.run.stopReason ?? (result.run.status === 'failed' ? 'error' : result.run.status === 'cancelled' ? 'cancelled' : null);
    const reply = extractReply(result.messages);
    const handling = stopHandling(reason, reply !== '', result.cancelledByUs);
    const latencyMs = Date.now() - (row.startedAt ?? conversationStart);
    const end = { stopReason: reason, latencyMs, usage: result.usage };
    this.options.breaker.success();
    if (row.kind === 'approval' && row.approval?.orphan && handling !== 'approval') {
      finishRequest(db, row.id, { ...end, outcome: reply ? 'replied' : 'no_reply' });
      logger.warn('answered the approval that was pending on the agent; its reply goes to no one', { item: item.queueId, stop_reason: reason, reply_chars: reply.length });
      return { sendMessage: true };
    }
    if (handling === 'reply') {
      // One transaction: a kill between the two would leave the item processing with no open request, and recovery would send it again.
      db.transaction(() => {
        finishRequest(db, row.id, { ...end, outcome: reply ? 'replied' : 'no_reply' });
        completeItem(db, { queueId: item.queueId, messageId: item.messageId!, reply, latencyMs: Date.now() - conversationStart, usage, stopReason: reason, deliveredByStoring: isLocal(item) });
      })();
      state.answered();
      const fields = { item: item.queueId, attempt: item.attempts, run: row.runId ?? undefined, stop_reason: reason ?? undefined, latency_ms: Date.now() - conversationStart, total_tokens: usage.totalTokens ?? undefined, reply_chars: reply.length };
      if (!reply) logger.warn('agent ended its turn without a reply: nothing is sent to the user', fields);
      else if (!isNormalEnd(reason)) logger.warn(`agent replied, but its run ended with stop reason ${reason}`, fields);
      logger.info('item completed', { ...fields, mode: 'live' });
      if (!isLocal(item)) this.options.onReply();
      return { done: true };
    }
    if (handling === 'approval') {
      const request = findApprovalRequest(result.messages);
      if (!request || request.toolCalls.length === 0 || approvals >= MAX_APPROVALS) {
        this.fail(row, item, settings, {
          message: approvals >= MAX_APPROVALS ? `the agent asked for ${approvals} tool approvals in a row for this message: look at its tools in Letta` : 'Letta stopped for an approval without naming the tool call',
          kind: 'approval',
          retryable: false,
          endpointFault: false,
          stopReason: reason,
        });
        return { done: true };
      }
      if (row.approval?.orphan) request.orphan = true;
      // The run's end and the held approval in one transaction: between them the item has no open request and recovery would send its message again.
      const id = db.transaction(() => {
        finishRequest(db, row.id, { ...end, outcome: 'approval' });
        const held = insertRequest(db, { queueId: item.queueId, messageId: item.messageId, attempt: item.attempts, kind: 'approval', otid: otidFor(this.options.agentId, 'approval', ...request.toolCalls.map((c) => c.tool_call_id)), approval: request });
        setApproval(db, held, request, 'awaiting_approval');
        return held;
      })();
      return { row: getRequest(db, id)! };
    }
    if (reason === 'insufficient_credits') state.outOfCredits(stopReasonText(reason));
    const cause = result.error ? ` (Letta: ${this.options.redact(result.error)})` : '';
    this.fail(row, item, settings, { ...end, message: `${stopReasonText(reason)}${cause}`, kind: 'stop_reason', retryable: handling === 'retry', endpointFault: false });
    return { done: true };
  }

  /** Finishes a request that failed and retries its item later, or fails it. */
  private fail(row: RequestRow, item: ClaimedItem, settings: Settings, failure: Failure & { latencyMs?: number; usage?: Usage }): void {
    const { db, logger, breaker, state } = this.options;
    if (failure.endpointFault) breaker.failure();
    if (failure.status === 401 || failure.status === 403) state.refusedKey(failure.message);
    const message = this.options.redact(failure.message);
    const retriesLeft = settings.max_retries - (item.attempts - 1);
    const end = { stopReason: failure.stopReason ?? null, httpStatus: failure.status ?? null, errorKind: failure.kind, error: message, latencyMs: failure.latencyMs, usage: failure.usage };
    const log = failure.kind === 'stop_reason' ? logger.warn.bind(logger) : logger.error.bind(logger);
    // The request's end and the item's in one transaction, as everywhere a request closes with its item.
    if (failure.retryable && retriesLeft > 0) {
      const delay = this.retryDelay(item.attempts, failure);
      db.transaction(() => {
        finishRequest(db, row.id, { ...end, outcome: 'retry' });
        retryItem(db, item.queueId, message, Date.now() + delay);
      })();
      logger.warn('agent request failed; will retry', { item: item.queueId, attempt: item.attempts, retry_in_ms: delay, status: failure.status, stop_reason: failure.stopReason ?? undefined, error: message });
    } else {
      db.transaction(() => {
        finishRequest(db, row.id, { ...end, outcome: 'failed' });
        failItem(db, item.queueId, message);
      })();
      log(failure.retryable ? 'agent request failed; no retries left' : 'agent request failed; not retryable', {
        item: item.queueId,
        attempt: item.attempts,
        status: failure.status,
        stop_reason: failure.stopReason ?? undefined,
        error: message,
      });
    }
  }

  private retryDelay(attempt: number, failure: Failure): number {
    const { retryBaseMs, retryMaxMs, rateLimitBaseMs } = this.options;
    // A provider's rate limit (429 without Retry-After) lasts tens of seconds: a longer schedule than a 5xx.
    const base = failure.kind === 'rate_limited' && failure.retryAfterMs === undefined ? rateLimitBaseMs : retryBaseMs;
    return Math.max(backoffDelay(attempt, { baseMs: base, maxMs: Math.max(retryMaxMs, base) }), failure.retryAfterMs ?? 0);
  }

  /** Detaches blocks left attached by finished requests; strict: false when one stays attached. */
  private async detachLeftovers(strict: boolean): Promise<boolean> {
    const { db, logger, settings } = this.options;
    try {
      const client = await this.options.client();
      this.memory ??= new UserMemory(db, client);
      const timeoutMs = Math.min(settings().letta.timeout_s * 1000, 10_000);
      await this.memory.detachLeftovers({ signal: AbortSignal.timeout(timeoutMs), timeoutMs });
      return true;
    } catch (error) {
      if (error instanceof LettaCallError && error.endpointFault) this.options.breaker.failure();
      logger.warn(strict ? 'a user block is still attached from an earlier request: nothing is sent until it is detached' : 'could not detach the user block; it is detached before the next request', {
        blocks: pendingDetaches(db),
        error: this.options.redact(errorText(error)),
      });
      return false;
    }
  }

  private call(settings: Settings, signal: AbortSignal) {
    return { signal, timeoutMs: settings.letta.timeout_s * 1000 };
  }
}

/** Any POST on its way when a runtime was killed has long landed or died after this; a recent one may still land. */
const LATE_LANDING_MS = 30_000;

/** A send cut off by a crash is resumed: one begun this recently may still become a run. */
function sentRecently(row: RequestRow): boolean {
  return Date.now() - (row.startedAt ?? 0) < LATE_LANDING_MS;
}

function asFailure(error: unknown): Failure {
  if (error instanceof UserBlockError) return { ...asFailure(error.cause), kind: 'user_block', endpointFault: false };
  if (error instanceof LettaCallError) {
    return { message: error.message, kind: kindOf(error.kind), status: error.status, retryable: error.retryable, retryAfterMs: error.retryAfterMs, endpointFault: error.endpointFault };
  }
  return { message: errorText(error), kind: 'connection', retryable: true, endpointFault: false };
}

function kindOf(kind: ErrorKind): RequestErrorKind {
  return kind === 'aborted' ? 'connection' : kind;
}

function addUsage(total: Usage, more: { promptTokens: number | null; completionTokens: number | null; totalTokens: number | null }): void {
  const add = (a: number | null | undefined, b: number | null) => (b === null ? (a ?? null) : (a ?? 0) + b);
  total.promptTokens = add(total.promptTokens, more.promptTokens);
  total.completionTokens = add(total.completionTokens, more.completionTokens);
  total.totalTokens = add(total.totalTokens, more.totalTokens);
}

/**
 * The otid of a request: stable for what it sends (a queue item's message, the answer to
 * one approval request), so a resend carries the same one and the agent's history shows
 * whether an unanswered send arrived. Shaped as a UUID, as Letta's own are.
 */
export function otidFor(agentId: string, ...parts: Array<string | number>): string {
  const text = [agentId, ...parts].join(':');
  // Two 64-bit FNV-1a hashes (not a secret, only stable and unlikely to collide): no crypto module to load.
  const hex = fnv1a64(text, 0xcbf29ce484222325n) + fnv1a64(text, 0x84222325cbf29ce4n);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${((parseInt(hex[16]!, 16) & 3) | 8).toString(16)}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function fnv1a64(text: string, seed: bigint): string {
  let hash = seed;
  for (let i = 0; i < text.length; i++) {
    hash ^= BigInt(text.charCodeAt(i));
    hash = (hash * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return hash.toString(16).padStart(16, '0');
}

/** A local message (`animus send`): its reply is read from the database, so storing it delivers it. */
function isLocal(item: ClaimedItem): boolean {
  return item.platform === PLATFORMS.local;
}
