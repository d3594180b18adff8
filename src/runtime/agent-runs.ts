import type { Database } from 'better-sqlite3';
import type { LettaClient, LettaMessage, OutgoingMessage, Run, RunStream, RunUsage, StreamedRun } from '../letta/client.js';
import { LettaCallError } from '../letta/errors.js';
import { knownRunIds, recordRun, type RequestRow } from '../store/agent-requests.js';

/**
 * The agent's lane on Letta runs. A message goes out as a background run on a stream
 * (`POST /v1/agents/{id}/messages/stream` with `background: true, include_pings: true`):
 * the stream's first event names the run, which is recorded before anything waits on
 * it, and its last events carry the run's messages, stop reason and usage. One request
 * a message, and the reply is read the moment the run ends (Letta's server hands a
 * background run's events to its stream within its 0.1 s poll of them). Polling a run
 * instead (`GET /v1/runs/{id}`) costs a request at each look and adds up to the longest
 * pause between looks (1 s) to every reply.
 *
 * The run is Letta's, not the connection's: when the stream breaks, goes silent or is
 * still going at the run deadline, the same run is followed by polling until it ends
 * (cancelled past the deadline), then its messages and usage are read. A restart does
 * the same with the run recorded before it. Against a server without background
 * streams (no such route, or no Redis behind it) the lane sends with
 * `POST .../messages/async` instead, which answers with the run at once, and polls.
 *
 * A request whose POST got no answer (timeout, dropped connection, 5xx from a proxy, a
 * SIGKILL in between) is resolved before anything is sent again: runs still active on
 * the agent are waited for, then the agent's latest messages are searched for the
 * request's `otid`; only when neither shows it did the message provably never start a
 * run, and only then does it go out again.
 */

export interface RunDriverOptions {
  db: Database;
  client: () => Promise<LettaClient>;
  /** Per call. */
  timeoutMs: () => number;
  /** A run going on for longer is cancelled. */
  runTimeoutMs: () => number;
  /** Longest pause between two looks at a running run. */
  pollMaxMs: number;
  /** How long after a first look that found nothing a second look is made, before a send counts as never made. */
  settleMs: () => number;
  /** A call failed for a reason of the endpoint: the breaker counts it. */
  onEndpointFault: (error: LettaCallError) => void;
  onEndpointOk: () => void;
  /** Logs a wait that takes a while (an endpoint down while a run is going on). */
  onWaitProblem: (runId: string, error: LettaCallError, retryInMs: number) => void;
  /** A run's stream broke or went silent: the run is followed by polling. */
  onStreamLost: (runId: string, error: LettaCallError) => void;
  /** The server has no background streams: every run from now on is sent async and polled. */
  onStreamUnavailable: (error: LettaCallError) => void;
}

export interface RunResult {
  run: Run;
  messages: LettaMessage[];
  usage: RunUsage;
  /** The runtime cancelled the run for going on past letta.run_timeout_s. */
  cancelledByUs: boolean;
  /** Why the run failed, when its stream said (see StreamedRun). */
  error?: string;
  /**
   * The run never began because an approval pends on the agent: what the async POST answers
   * with a 409 PENDING_APPROVAL, a stream only says in its error event (its run was made first).
   */
  pendingApproval?: LettaCallError;
}

/** How many of the agent's latest messages are searched for a request's otid. */
const HISTORY_WINDOW = 50;
const FAULT_BACKOFF_MAX_MS = 30_000;
/**
 * Letta answers the async POST as soon as the run is queued, so a look at once finds it
 * still going nearly every time; one millisecond later a quick run has ended and is read
 * with one look instead of two (measured with bench/runtime: 1.8 looks a run at once,
 * 1.06 after 1 ms, each look a request on both sides). A run resumed after a restart
 * waits the same millisecond, which nobody notices.
 */
const FIRST_LOOK_MS = 1;

export class RunDriver {
  /** The run this driver started last and when Letta named it: its first look counts from then, not from after the run id's write. */
  private started: { runId: string; at: number } | undefined;
  /** The stream of the run started last, while nobody has followed it yet. */
  private live: RunStream | undefined;
  /** False once the server showed it has no background streams. */
  private streams = true;

  constructor(private readonly options: RunDriverOptions) {}

  private call(signal: AbortSignal) {
    return { signal, timeoutMs: this.options.timeoutMs() };
  }

  /** Sends and records the run; throws LettaCallError (a timeout, a dropped connection or a 5xx may still have made one: see resolveUnsent). */
  async start(row: RequestRow, messages: OutgoingMessage[], signal: AbortSignal): Promise<string> {
    const client = await this.options.client();
    this.live?.abandon();
    this.live = undefined;
    if (this.streams) {
      try {
        const stream = await client.streamRun(messages, { ...this.call(signal), idleMs: this.options.timeoutMs() });
        // Kept before the run id's write: should that fail, the next start leaves this stream.
        this.live = stream;
        this.named(row, stream.runId);
        return stream.runId;
      } catch (error) {
        if (!(error instanceof LettaCallError) || !streamUnavailable(error)) throw error;
        // Refused before any run was made: sent again at once, the other way.
        this.streams = false;
        this.options.onStreamUnavailable(error);
      }
    }
    const run = await client.createRun(messages, this.call(signal));
    this.named(row, run.id);
    return run.id;
  }

  private named(row: RequestRow, runId: string): void {
    this.started = { runId, at: performance.now() };
    recordRun(this.options.db, row.id, runId);
    this.options.onEndpointOk();
  }

  /**
   * For a request whose POST got no answer: the run it started, or undefined when it
   * provably started none. Waits for every run still active on the agent first.
   * `mayLandLate`: the POST may still be on its way to a run (see below).
   */
  async resolveUnsent(row: RequestRow, signal: AbortSignal, mayLandLate: boolean): Promise<string | undefined> {
    const found = await this.lookForRun(row, signal);
    if (found !== undefined || !mayLandLate || !row.otid || row.queueId === null) return found;
    // A POST nobody answered (a timeout, a dropped connection, a gateway's 504, a kill)
    // can still be taken by a busy server after the first look (seen on a loaded machine:
    // the run appeared later). Only a second look, a settle time after the first, makes
    // "never reached Letta" safe to act on. A server that answered has finished with it.
    await sleep(this.options.settleMs(), signal);
    return this.lookForRun(row, signal);
  }

  private async lookForRun(row: RequestRow, signal: AbortSignal): Promise<string | undefined> {
    const client = await this.options.client();
    const active = await this.patient('runs/active', signal, () => client.activeRuns(this.call(signal)));
    for (const run of active) await this.waitUntilEnded(run.id, Date.now(), signal);
    if (!row.otid || row.queueId === null) return undefined;
    const known = knownRunIds(this.options.db, row.queueId);
    const recent = await this.patient('messages', signal, () => client.recentMessages(HISTORY_WINDOW, this.call(signal)));
    const mine = recent.find((m) => m?.otid === row.otid && typeof m.run_id === 'string' && !known.has(m.run_id));
    if (!mine) return undefined;
    recordRun(this.options.db, row.id, mine.run_id as string);
    return mine.run_id as string;
  }

  /** Waits for every run Letta still has going on this agent (one run in flight, across restarts too). */
  async settleActive(signal: AbortSignal): Promise<string[]> {
    const client = await this.options.client();
    const active = await this.patient('runs/active', signal, () => client.activeRuns(this.call(signal)));
    for (const run of active) await this.waitUntilEnded(run.id, Date.now(), signal);
    return active.map((run) => run.id);
  }

  /** Inspects a run until it ends (cancelling it past the run deadline), then reads its messages and usage. */
  async finish(runId: string, startedAt: number, signal: AbortSignal): Promise<RunResult> {
    const client = await this.options.client();
    const stream = this.live?.runId === runId ? this.live : undefined;
    this.live = undefined;
    const streamed = stream && (await this.follow(stream, startedAt));
    if (streamed) {
      this.started = undefined;
      const pending = streamed.error !== undefined && /waiting for approval/i.test(streamed.error);
      return { ...streamed, cancelledByUs: false, ...(pending ? { pendingApproval: new LettaCallError(`Letta answered 409: PENDING_APPROVAL: ${streamed.error}`, 'http_4xx', { status: 409, code: 'PENDING_APPROVAL' }) } : {}) };
    }
    const { run, cancelledByUs } = await this.waitUntilEnded(runId, startedAt, signal);
    // Both reads at once (two connections): neither starts anything on the agent.
    const none: RunUsage = { promptTokens: null, completionTokens: null, totalTokens: null };
    const [messages, usage] = await Promise.all([
      this.patient(runId, signal, () => client.runMessages(runId, this.call(signal))),
      // Usage is a figure, not the answer: a run without it still delivers.
      client.runUsage(runId, this.call(signal)).catch((error: unknown) => {
        if (error instanceof LettaCallError && error.aborted) throw error;
        return none;
      }),
    ]);
    return { run, messages, usage, cancelledByUs };
  }

  /** The run as its stream ends it; undefined when the stream broke, went silent or outlived the run deadline (then polling follows the run). */
  private async follow(stream: RunStream, startedAt: number): Promise<StreamedRun | undefined> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), Math.max(0, startedAt + this.options.runTimeoutMs() - Date.now()));
    });
    try {
      const ended = await Promise.race([stream.ended, deadline]);
      // Past the deadline: polling cancels the run and waits for its end.
      if (!ended) stream.abandon();
      return ended;
    } catch (error) {
      if (!(error instanceof LettaCallError) || error.aborted) throw error;
      this.options.onStreamLost(stream.runId, error);
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  private async waitUntilEnded(runId: string, startedAt: number, signal: AbortSignal): Promise<{ run: Run; cancelledByUs: boolean }> {
    const client = await this.options.client();
    let cancelledByUs = false;
    let pause = FIRST_LOOK_MS;
    const named = this.started?.runId === runId ? this.started.at : undefined;
    this.started = undefined;
    for (let first = true; ; first = false) {
      await sleep(first && named !== undefined ? Math.max(0, named + FIRST_LOOK_MS - performance.now()) : pause, signal);
      const run = await this.patient(runId, signal, () => client.getRun(runId, this.call(signal)));
      if (run.status !== 'created' && run.status !== 'running') return { run, cancelledByUs };
      if (!cancelledByUs && Date.now() - startedAt > this.options.runTimeoutMs()) {
        await this.patient(runId, signal, () => client.cancelRuns([runId], this.call(signal)));
        cancelledByUs = true;
      }
      // 2, 4, 8 … ms up to the ceiling: a long run costs a request a second.
      pause = Math.min(this.options.pollMaxMs, pause * 2);
    }
  }

  /**
   * A look at a run that must not give up: while the run may be going on, sending
   * again is never the answer, so transport faults and 5xx are waited out (with
   * backoff, counted by the breaker). A 4xx is final; an abort ends the wait.
   */
  private async patient<T>(what: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    for (let failures = 0; ; failures++) {
      try {
        const value = await fn();
        if (failures > 0) this.options.onEndpointOk();
        return value;
      } catch (error) {
        if (!(error instanceof LettaCallError) || error.aborted || (error.kind === 'http_4xx' && !error.retryable)) throw error;
        if (error.endpointFault) this.options.onEndpointFault(error);
        const delay = Math.max(error.retryAfterMs ?? 0, Math.min(FAULT_BACKOFF_MAX_MS, 100 * 2 ** Math.min(failures, 9)));
        this.options.onWaitProblem(what, error, delay);
        await sleep(delay, signal);
      }
    }
  }
}

/**
 * A refusal saying the server has no background streams, before it made any run: no
 * such route (an older server: FastAPI's 404 "Not Found", or 405), or a server without
 * the Redis that background streams need (503).
 */
function streamUnavailable(error: LettaCallError): boolean {
  if (error.status === 405) return true;
  if (error.status === 404) return /: Not Found$/.test(error.message);
  return error.status === 503 && /redis|background stream/i.test(error.message);
}

/** Resolves after ms, or rejects with an aborted LettaCallError when the runtime stops. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(new LettaCallError('request abandoned: the runtime is stopping', 'aborted'));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new LettaCallError('request abandoned: the runtime is stopping', 'aborted'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
