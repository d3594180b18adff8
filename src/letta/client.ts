import type { Agent, ClientRequest, IncomingMessage, request as httpRequest } from 'node:http';
import { errorBodyCode, errorBodyText, kindForStatus, LettaCallError, parseRetryAfter } from './errors.js';
import { runStatusOf } from './stop-reasons.js';
import { SseRunReader, usageOf } from './sse-events.js';

/**
 * A thin client for the part of Letta's REST API that animus calls, on node:http with
 * one keep-alive connection: no SDK (the official one retries 409/429/5xx by itself
 * without an idempotency key, and costs memory an agent instance does not need), no
 * retries of its own (the queue owns them), every call bounded by a timeout, and
 * response bodies parsed and dropped at once.
 *
 * Shapes (Letta OpenAPI 1.0.0):
 *   POST  /v1/agents/{id}/messages/stream       {messages, streaming, background, include_pings} → server-sent events (see sse-events.ts)
 *   POST  /v1/agents/{id}/messages/async        {messages:[…]} → Run {id, status}
 *   GET   /v1/runs/{run_id}                     → Run {id, status: created|running|completed|failed|cancelled, stop_reason}
 *   GET   /v1/runs/{run_id}/messages            → LettaMessage[]
 *   GET   /v1/runs/{run_id}/usage               → {prompt_tokens, completion_tokens, total_tokens}
 *   GET   /v1/runs/active?agent_id=…            → Run[] still going
 *   POST  /v1/agents/{id}/messages/cancel       {run_ids} → …
 *   GET   /v1/agents/{id}/messages?limit&order  → LettaMessage[] (the agent's history)
 *   GET   /v1/agents/{id}                       → AgentState
 *   POST  /v1/identities/, GET /v1/identities/?identifier_key=…
 *   POST  /v1/blocks/, GET /v1/blocks/{id}
 *   PATCH /v1/agents/{id}/core-memory/blocks/attach|detach/{block_id}
 */

export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs: number;
}

export type RunStatus = 'created' | 'running' | 'completed' | 'failed' | 'cancelled';

export interface Run {
  id: string;
  status: RunStatus;
  stopReason: string | null;
}

export interface LettaMessage {
  id?: string;
  message_type?: string;
  content?: unknown;
  otid?: string | null;
  run_id?: string | null;
  tool_call?: { name?: string; arguments?: string; tool_call_id?: string } | null;
  tool_calls?: Array<{ name?: string; arguments?: string; tool_call_id?: string }> | null;
  [key: string]: unknown;
}

export interface RunUsage {
  promptTokens: number | null;
  completionTokens: number | null;
  totalTokens: number | null;
}

/** A message the runtime sends: a user message, or the answer to an approval request (current or older form). */
export type OutgoingMessage =
  | { role: 'user'; content: string; otid: string; sender_id?: string }
  | { type: 'approval'; approvals: Array<{ type: 'approval'; tool_call_id: string; approve: boolean; reason?: string }>; otid: string }
  | { type: 'approval'; approval_request_id: string; approve: boolean; reason?: string; otid: string };

/** A run as its background stream ended it ([DONE]). */
export interface StreamedRun {
  run: Run;
  messages: LettaMessage[];
  usage: RunUsage;
  /** What an error event of the stream said (a failed run's cause: a provider's rate limit, a timeout). */
  error?: string;
}

/** A background stream whose run Letta has named. */
export interface RunStream {
  runId: string;
  /**
   * Settles when the stream ends. Rejects (LettaCallError) when it broke, went silent
   * for longer than `idleMs`, ended without [DONE] or was abandoned: the run goes on
   * on the server (it is a background run) and can be followed by polling.
   */
  ended: Promise<StreamedRun>;
  /** Stops reading; `ended` rejects. */
  abandon(): void;
}

export interface LettaClientOptions {
  endpoint: string;
  apiKey: string;
  agentId: string;
}

/** `https://host/v1/` and `https://host` both name the API root `https://host`. */
export function lettaBaseUrl(endpoint: string): string {
  return endpoint.trim().replace(/\/+$/, '').replace(/\/v1$/, '');
}

/** Above this a response is refused rather than held in memory (a run's messages are a few KiB). */
const MAX_BODY = 8 * 1024 * 1024;

interface Transport {
  agent: Agent;
  send: typeof httpRequest;
}

export class LettaClient {
  private readonly base: URL;
  /** Where requests go, as node:http's options (a URL per request costs a parse on every call). */
  private readonly origin: { protocol: string; hostname: string; port: string | undefined; prefix: string };
  /** node:http or node:https, loaded on the first call: an instance that never calls Letta loads neither (TLS costs memory). */
  private transport: Promise<Transport> | undefined;
  private closed = false;
  readonly agentId: string;

  constructor(private readonly options: LettaClientOptions) {
    this.base = new URL(`${lettaBaseUrl(options.endpoint)}/`);
    const { protocol, hostname, port, pathname } = this.base;
    // node:http takes an IPv6 literal without its brackets.
    this.origin = { protocol, hostname: hostname.startsWith('[') ? hostname.slice(1, -1) : hostname, port: port || undefined, prefix: pathname };
    this.agentId = options.agentId;
  }

  close(): void {
    this.closed = true;
    void this.transport?.then((t) => t.agent.destroy());
  }

  private connect(): Promise<Transport> {
    this.transport ??= (async () => {
      const module = this.base.protocol === 'https:' ? await import('node:https') : await import('node:http');
      // Two connections: the lane's own calls are sequential, but a run's messages and usage are read together.
      return { agent: new module.Agent({ keepAlive: true, maxSockets: 2 }), send: module.request };
    })();
    return this.transport;
  }

  private get agentPath(): string {
    return `v1/agents/${encodeURIComponent(this.agentId)}`;
  }

  /**
   * Sends the messages as a background run on a stream, and resolves once an event names
   * the run (at once: with `include_pings` the first event is a ping carrying its id).
   * Refusals come before the stream as any call's do (429, 5xx, 4xx; a pending approval is
   * not one: Letta reports it inside the stream, see RunDriver.finish);
   * `timeoutMs` bounds the wait for the run's name, `idleMs` each silence after it
   * (Letta pings a stream every 20 s while a run thinks). Letta 0.16 marks this route
   * deprecated in favour of `POST .../messages` with `streaming: true`, which it refuses (422)
   * to any client that does not say it is Letta's own SDK; should the route go, the runtime
   * falls back to the async lane (see RunDriver).
   */
  async streamRun(messages: OutgoingMessage[], { signal, timeoutMs, idleMs }: CallOptions & { idleMs: number }): Promise<RunStream> {
    const transport = await this.connect();
    if (this.closed) throw abortedError();
    const path = `${this.origin.prefix}${this.agentPath}/messages/stream`;
    const payload = JSON.stringify({ messages, streaming: true, stream_tokens: false, background: true, include_pings: true });
    return new Promise<RunStream>((resolveNamed, rejectNamed) => {
      if (signal?.aborted) return rejectNamed(abortedError());
      const reader = new SseRunReader();
      let named = false;
      let settled = false;
      let resolveEnded!: (run: StreamedRun) => void;
      let rejectEnded!: (error: LettaCallError) => void;
      const ended = new Promise<StreamedRun>((resolve, reject) => {
        resolveEnded = resolve;
        rejectEnded = reject;
      });
      // Handled by whoever awaits it; a stream nobody follows any more must not be an unhandled rejection.
      ended.catch(() => {});
      let timer: NodeJS.Timeout | undefined;
      const arm = (ms: number, error: () => LettaCallError) => {
        clearTimeout(timer);
        timer = setTimeout(() => stop(error()), ms);
      };
      const stop = (error: LettaCallError | undefined, run?: StreamedRun) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (!error) resolveEnded(run!);
        else {
          req.destroy();
          if (named) rejectEnded(error);
          else rejectNamed(error);
        }
      };
      const onAbort = () => stop(abortedError());
      signal?.addEventListener('abort', onAbort, { once: true });
      const req = this.open(transport, 'POST', path, payload, 'text/event-stream');
      arm(timeoutMs, () => new LettaCallError(`Letta did not name the run of POST ${this.agentPath}/messages/stream within ${Math.round(timeoutMs)} ms`, 'timeout'));
      req.on('error', (error: NodeJS.ErrnoException) => stop(this.unreachable(error)));
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        const type = String(res.headers['content-type'] ?? '');
        if (status < 200 || status >= 300 || !type.includes('text/event-stream')) {
          readBody(res).then(
            (text) => {
              const parsed = parseBody(text);
              // A 2xx without a stream may still have started a run: the caller looks for it before sending again.
              stop(status >= 200 && status < 300 ? new LettaCallError(`Letta answered the stream with ${type || 'no content type'} instead of events`, 'http_5xx', { status }) : answerError(res, parsed));
            },
            (error: Error) => stop(error instanceof LettaCallError ? error : dropped(error)),
          );
          return;
        }
        let size = 0;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          size += chunk.length;
          if (size > MAX_BODY) return stop(new LettaCallError(`Letta's stream is larger than ${MAX_BODY} bytes`, 'http_5xx', { status }));
          reader.push(chunk);
          if (!named && reader.runId !== undefined) {
            named = true;
            const runId = reader.runId;
            resolveNamed({ runId, ended, abandon: () => stop(abortedError()) });
          }
          if (reader.done) {
            if (!named) return stop(new LettaCallError('Letta ended the stream without naming its run', 'connection'));
            const reason = reader.stopReason ?? 'error'; // [DONE] without a stop reason: Letta's finalizer calls that an error.
            return stop(undefined, { run: { id: reader.runId!, status: runStatusOf(reason), stopReason: reason }, messages: reader.messages, usage: reader.usage, ...(reader.error ? { error: reader.error } : {}) });
          }
          if (named) arm(idleMs, () => new LettaCallError(`Letta's stream was silent for ${Math.round(idleMs)} ms`, 'timeout'));
        });
        // After [DONE] the answer ends as it should: no error is made for it (an Error's stack costs).
        res.on('end', () => settled || stop(new LettaCallError('the stream ended before Letta said [DONE]', 'connection')));
        res.on('aborted', () => settled || stop(dropped()));
        res.on('error', (error: Error) => settled || stop(dropped(error)));
      });
      req.end(payload);
    });
  }

  async createRun(messages: OutgoingMessage[], call: CallOptions): Promise<Run> {
    return toRun(await this.call('POST', `${this.agentPath}/messages/async`, { messages }, call));
  }

  async getRun(runId: string, call: CallOptions): Promise<Run> {
    return toRun(await this.call('GET', `v1/runs/${encodeURIComponent(runId)}`, undefined, call));
  }

  async runMessages(runId: string, call: CallOptions): Promise<LettaMessage[]> {
    const body = await this.call('GET', `v1/runs/${encodeURIComponent(runId)}/messages?limit=1000&order=asc`, undefined, call);
    return Array.isArray(body) ? (body as LettaMessage[]) : [];
  }

  async runUsage(runId: string, call: CallOptions): Promise<RunUsage> {
    return usageOf((await this.call('GET', `v1/runs/${encodeURIComponent(runId)}/usage`, undefined, call)) as Record<string, unknown> | undefined);
  }

  async activeRuns(call: CallOptions): Promise<Run[]> {
    const body = await this.call('GET', `v1/runs/active?agent_id=${encodeURIComponent(this.agentId)}`, undefined, call);
    return Array.isArray(body) ? body.map(toRun).filter((run) => run.status === 'created' || run.status === 'running') : [];
  }

  async cancelRuns(runIds: string[], call: CallOptions): Promise<void> {
    await this.call('POST', `${this.agentPath}/messages/cancel`, { run_ids: runIds }, call);
  }

  /** The agent's latest messages, newest first. */
  async recentMessages(limit: number, call: CallOptions): Promise<LettaMessage[]> {
    const body = await this.call('GET', `${this.agentPath}/messages?limit=${limit}&order=desc`, undefined, call);
    return Array.isArray(body) ? (body as LettaMessage[]) : [];
  }

  async getAgent(call: CallOptions): Promise<{ id: string; name?: string }> {
    return (await this.call('GET', this.agentPath, undefined, call)) as { id: string; name?: string };
  }

  /** Creates a user identity, or finds the one with this key when it exists already (409). */
  async ensureIdentity(identity: { identifierKey: string; name: string }, call: CallOptions): Promise<string> {
    try {
      const made = (await this.call('POST', 'v1/identities/', { identifier_key: identity.identifierKey, name: identity.name, identity_type: 'user' }, call)) as { id?: string };
      if (typeof made?.id === 'string') return made.id;
    } catch (error) {
      if (!(error instanceof LettaCallError && error.status === 409)) throw error;
    }
    const found = await this.call('GET', `v1/identities/?identifier_key=${encodeURIComponent(identity.identifierKey)}`, undefined, call);
    const id = Array.isArray(found) ? (found[0] as { id?: unknown } | undefined)?.id : undefined;
    if (typeof id !== 'string') throw new LettaCallError(`Letta has no identity ${identity.identifierKey} after refusing to create it`, 'http_4xx', { status: 409 });
    return id;
  }

  async createBlock(block: { label: string; value: string }, call: CallOptions): Promise<string> {
    const made = (await this.call('POST', 'v1/blocks/', { label: block.label, value: block.value }, call)) as { id?: string };
    if (typeof made?.id !== 'string') throw new LettaCallError('Letta created a block without an id', 'http_5xx', { status: 200 });
    return made.id;
  }

  /** Whether a block still exists (a 404 means the server lost it). */
  async blockExists(blockId: string, call: CallOptions): Promise<boolean> {
    try {
      await this.call('GET', `v1/blocks/${encodeURIComponent(blockId)}`, undefined, call);
      return true;
    } catch (error) {
      if (error instanceof LettaCallError && error.status === 404) return false;
      throw error;
    }
  }

  async attachBlock(blockId: string, call: CallOptions): Promise<void> {
    await this.call('PATCH', `${this.agentPath}/core-memory/blocks/attach/${encodeURIComponent(blockId)}`, undefined, call);
  }

  async detachBlock(blockId: string, call: CallOptions): Promise<void> {
    await this.call('PATCH', `${this.agentPath}/core-memory/blocks/detach/${encodeURIComponent(blockId)}`, undefined, call);
  }

  /** One request: the parsed JSON body of a 2xx, else a LettaCallError. Never retried here. */
  async call(method: string, path: string, body: unknown, call: CallOptions): Promise<unknown> {
    const transport = await this.connect();
    if (this.closed) throw abortedError();
    return this.request(transport, method, path, body, call);
  }

  /** One request to Letta, with the key; the body (JSON) is sent by the caller's `end`. */
  private open({ agent, send }: Transport, method: string, path: string, payload: string | undefined, accept: string): ClientRequest {
    return send({
      protocol: this.origin.protocol,
      hostname: this.origin.hostname,
      port: this.origin.port,
      path,
      method,
      agent,
      headers: {
        authorization: `Bearer ${this.options.apiKey}`,
        accept,
        ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
      },
    });
  }

  private unreachable(error: NodeJS.ErrnoException): LettaCallError {
    return new LettaCallError(`cannot reach Letta at ${this.base.host}: ${error.code ?? error.message}`, 'connection');
  }

  private request(transport: Transport, method: string, path: string, body: unknown, { signal, timeoutMs }: CallOptions): Promise<unknown> {
    const target = `${this.origin.prefix}${path}`;
    const pathname = target.split('?')[0];
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(abortedError());
      let settled = false;
      const finish = (error: Error | undefined, value?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (error) reject(error);
        else resolve(value);
      };
      const req = this.open(transport, method, target, payload, 'application/json');
      const timer = setTimeout(() => {
        finish(new LettaCallError(`Letta did not answer ${method} ${pathname} within ${Math.round(timeoutMs)} ms`, 'timeout'));
        req.destroy();
      }, timeoutMs);
      const onAbort = () => {
        finish(abortedError());
        req.destroy();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('error', (error: NodeJS.ErrnoException) => finish(this.unreachable(error)));
      req.on('response', (res) => {
        readBody(res).then(
          (text) => {
            const status = res.statusCode ?? 0;
            const parsed = parseBody(text);
            if (status >= 200 && status < 300) return finish(undefined, parsed);
            finish(answerError(res, parsed));
          },
          (error: Error) => finish(error instanceof LettaCallError ? error : dropped(error)),
        );
      });
      req.end(payload);
    });
  }
}

/** The LettaCallError of a non-2xx answer (its body parsed when it is JSON). */
function answerError(res: IncomingMessage, parsed: unknown): LettaCallError {
  const status = res.statusCode ?? 0;
  const header = res.headers['retry-after'];
  const retryAfterMs = parseRetryAfter(Array.isArray(header) ? header[0] : header);
  const { code, detail } = errorBodyCode(parsed);
  const text = errorBodyText(parsed) ?? res.statusMessage ?? 'no detail';
  return new LettaCallError(`Letta answered ${status}: ${text}`, kindForStatus(status), { status, retryAfterMs, code, detail });
}

function parseBody(text: string): unknown {
  try {
    return text === '' ? undefined : JSON.parse(text);
  } catch {
    return text; // A proxy's HTML error page: kept for the message.
  }
}

function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        res.destroy();
        reject(new LettaCallError(`Letta's answer is larger than ${MAX_BODY} bytes`, 'http_5xx', { status: res.statusCode }));
        return;
      }
      chunks.push(chunk);
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('aborted', () => reject(dropped()));
    res.on('error', reject);
  });
}

function dropped(error?: Error): LettaCallError {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return new LettaCallError(`connection to Letta dropped mid-answer${error ? `: ${code ?? error.message}` : ''}`, 'connection');
}

function abortedError(): LettaCallError {
  return new LettaCallError('request abandoned: the runtime is stopping', 'aborted');
}

function toRun(body: unknown): Run {
  const record = (body ?? {}) as Record<string, unknown>;
  if (typeof record.id !== 'string') throw new LettaCallError('Letta answered without a run id', 'http_5xx', { status: 200 });
  const status = typeof record.status === 'string' ? (record.status as RunStatus) : 'created';
  const stop = record.stop_reason;
  const stopReason = typeof stop === 'string' ? stop : typeof stop === 'object' && stop !== null && typeof (stop as { stop_reason?: unknown }).stop_reason === 'string' ? (stop as { stop_reason: string }).stop_reason : null;
  return { id: record.id, status, stopReason };
}
