import type { Usage } from '../store/work-queue.js';
import { extractReply } from './format.js';

/**
 * The agent's Letta REST API through `@letta-ai/letta-client` 1.x, loaded only when
 * a live request is first made (echo and listen instances never load it). The
 * client's own retries are off: it retries 409/429/5xx without an idempotency key,
 * which would send one message to the agent twice; the queue owns retries.
 */

export interface AgentReply {
  reply: string;
  usage: Usage;
  latencyMs: number;
}

export interface AgentClient {
  send(text: string, options: { signal: AbortSignal; timeoutMs: number }): Promise<AgentReply>;
  createUserBlock(label: string, value: string, options: { signal: AbortSignal; timeoutMs: number }): Promise<string>;
  attachBlock(blockId: string, options: { signal: AbortSignal; timeoutMs: number }): Promise<void>;
  detachBlock(blockId: string, options: { signal: AbortSignal; timeoutMs: number }): Promise<void>;
}

export interface LettaOptions {
  endpoint: string;
  apiKey: string;
  agentId: string;
}

/** A failed agent request, classified for the queue. */
export class AgentCallError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
    readonly retryAfterMs?: number,
    /** Aborted by our own shutdown, not a failure of the agent. */
    readonly aborted = false,
  ) {
    super(message);
    this.name = 'AgentCallError';
  }
}

/** The client appends /v1 itself: `https://host/v1/` and `https://host` both become `https://host`. */
export function lettaBaseUrl(endpoint: string): string {
  return endpoint.trim().replace(/\/+$/, '').replace(/\/v1$/, '');
}

const NOT_RETRYABLE = new Set([400, 401, 403, 404, 422]);

export async function createLettaClient(options: LettaOptions): Promise<AgentClient> {
  const { default: Letta, APIError, APIUserAbortError, APIConnectionError, APIConnectionTimeoutError } = await import('@letta-ai/letta-client');
  const client = new Letta({ apiKey: options.apiKey, baseURL: lettaBaseUrl(options.endpoint), maxRetries: 0 });

  const classify = (error: unknown, signal: AbortSignal): AgentCallError => {
    if (error instanceof AgentCallError) return error;
    if (signal.aborted || error instanceof APIUserAbortError) return new AgentCallError('request abandoned: the runtime is stopping', true, undefined, undefined, true);
    if (error instanceof APIConnectionTimeoutError) return new AgentCallError('agent request timed out', true);
    if (error instanceof APIConnectionError) return new AgentCallError(`cannot reach the agent endpoint: ${causeText(error)}`, true);
    if (error instanceof APIError && typeof error.status === 'number') {
      const status = error.status;
      return new AgentCallError(`agent endpoint answered ${status}: ${detailText(error.error) ?? error.message}`, !NOT_RETRYABLE.has(status), status, retryAfter(error.headers));
    }
    return new AgentCallError(error instanceof Error ? error.message : String(error), true);
  };

  const call = async <T>(signal: AbortSignal, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (error) {
      throw classify(error, signal);
    }
  };

  return {
    async send(text, { signal, timeoutMs }) {
      const started = performance.now();
      const response = await call(signal, () =>
        client.agents.messages.create(options.agentId, { messages: [{ role: 'user', content: text }] }, { signal, timeout: timeoutMs, maxRetries: 0 }),
      );
      const latencyMs = performance.now() - started;
      const usage = ((response as unknown as { usage?: Record<string, unknown> }).usage ?? {});
      return {
        reply: extractReply(Array.isArray(response.messages) ? response.messages : []),
        usage: { promptTokens: num(usage.prompt_tokens), completionTokens: num(usage.completion_tokens), totalTokens: num(usage.total_tokens) },
        latencyMs,
      };
    },
    async createUserBlock(label, value, { signal, timeoutMs }) {
      const block = await call(signal, () => client.blocks.create({ label, value }, { signal, timeout: timeoutMs, maxRetries: 0 }));
      return block.id as string;
    },
    async attachBlock(blockId, { signal, timeoutMs }) {
      await call(signal, () => client.agents.blocks.attach(blockId, { agent_id: options.agentId }, { signal, timeout: timeoutMs, maxRetries: 0 }));
    },
    async detachBlock(blockId, { signal, timeoutMs }) {
      await call(signal, () => client.agents.blocks.detach(blockId, { agent_id: options.agentId }, { signal, timeout: timeoutMs, maxRetries: 0 }));
    },
  };
}

function num(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function detailText(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const detail = (body as { detail?: unknown }).detail;
  if (typeof detail === 'string') return detail;
  if (detail !== undefined) return JSON.stringify(detail).slice(0, 300);
  return undefined;
}

function causeText(error: Error): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? error.message;
}

function retryAfter(headers: Headers | undefined): number | undefined {
  const raw = headers?.get?.('retry-after');
  if (!raw) return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(raw);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}
