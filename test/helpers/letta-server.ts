import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A real HTTP server on 127.0.0.1 speaking the part of Letta's REST API that animus
 * uses, for tests and benchmarks:
 *
 *   POST  /v1/agents/{id}/messages                         → {messages:[assistant_message], stop_reason, usage}
 *   POST  /v1/blocks/                                      → {id, label, value}
 *   PATCH /v1/agents/{id}/core-memory/blocks/attach/{bid}  → {id}
 *   PATCH /v1/agents/{id}/core-memory/blocks/detach/{bid}  → {id}
 *   GET   /v1/agents/{id}                                  → {id, name}
 *
 * Usage:
 *   const letta = await startLettaServer({ apiKey: 'sk-let-4f9a1c2e8b7d' });
 *   letta.url                       // http://127.0.0.1:<port>   (also works with a /v1 suffix)
 *   letta.reply = (text) => `hi: ${text}`;   // default answer (text = the user content)
 *   letta.script({ status: 500 }, { delayMs: 2000 }, { drop: true });  // next requests to /messages, in order
 *   letta.requests                  // every request: {method, path, body, authorization, at}
 *   await letta.waitForRequests(3)  // resolves once 3 message requests arrived
 *   await letta.close()
 *
 * Unknown agent ids answer 404 when `agents` is given; a wrong bearer key answers 401.
 */
export interface LettaStep {
  /** Answer with this status and a Letta error body `{detail}` (or `body`). */
  status?: number;
  body?: unknown;
  /** Wait before answering (a slow agent). */
  delayMs?: number;
  /** Destroy the connection without answering. */
  drop?: boolean;
  /** Reply text for a 200 (else `reply()` decides). */
  reply?: string;
  headers?: Record<string, string>;
}

export interface LettaRequest {
  method: string;
  path: string;
  body: unknown;
  authorization: string | undefined;
  at: number;
  /** The user message text, for /messages requests. */
  text?: string;
  /** When the answer was written (performance.now()), for 200 message answers. */
  answeredAt?: number;
}

export interface LettaServer {
  url: string;
  port: number;
  requests: LettaRequest[];
  /** Message requests only. */
  messageRequests(): LettaRequest[];
  reply: (text: string, agentId: string) => string;
  /** Every answer's usage. */
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number; step_count: number };
  script(...steps: LettaStep[]): void;
  /** Applied to every message request once the script is used up (e.g. `{status: 500}` for an outage). */
  fallback: LettaStep | undefined;
  waitForRequests(count: number, timeoutMs?: number): Promise<LettaRequest[]>;
  /** Called with each message request as it arrives (benchmarks time it). */
  onMessage: ((request: LettaRequest) => void) | undefined;
  close(): Promise<void>;
}

export interface LettaServerOptions {
  /** Expected bearer key; others get 401. */
  apiKey?: string;
  /** Known agent ids; others get 404. */
  agents?: string[];
  port?: number;
}

export async function startLettaServer(options: LettaServerOptions = {}): Promise<LettaServer> {
  const steps: LettaStep[] = [];
  const sockets = new Set<Socket>();
  const waiters: Array<{ count: number; resolve: (r: LettaRequest[]) => void }> = [];
  let blockSeq = 0;

  const state: LettaServer = {
    url: '',
    port: 0,
    requests: [],
    messageRequests: () => state.requests.filter((r) => r.text !== undefined),
    reply: (text) => `echo: ${text}`,
    usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15, step_count: 1 },
    script: (...more) => {
      steps.push(...more);
    },
    fallback: undefined,
    onMessage: undefined,
    waitForRequests: (count, timeoutMs = 20_000) =>
      new Promise((resolve, reject) => {
        if (state.messageRequests().length >= count) return resolve(state.messageRequests());
        const timer = setTimeout(() => reject(new Error(`Letta stand-in: expected ${count} message requests, got ${state.messageRequests().length}`)), timeoutMs);
        waiters.push({
          count,
          resolve: (r) => {
            clearTimeout(timer);
            resolve(r);
          },
        });
      }),
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    try {
      body = raw === '' ? undefined : JSON.parse(raw);
    } catch {
      body = raw;
    }
    const path = (req.url ?? '/').split('?')[0]!;
    const record: LettaRequest = { method: req.method ?? 'GET', path, body, authorization: req.headers.authorization, at: performance.now() };
    const messages = /^\/v1\/agents\/([^/]+)\/messages\/?$/.exec(path);
    if (messages && req.method === 'POST') {
      const content = (body as { messages?: Array<{ content?: unknown }> })?.messages?.[0]?.content;
      record.text = typeof content === 'string' ? content : JSON.stringify(content ?? '');
    }
    state.requests.push(record);
    if (record.text !== undefined) {
      state.onMessage?.(record);
      const count = state.messageRequests().length;
      for (const waiter of waiters.splice(0)) {
        if (count >= waiter.count) waiter.resolve(state.messageRequests());
        else waiters.push(waiter);
      }
    }

    if (options.apiKey && req.headers.authorization !== `Bearer ${options.apiKey}`) {
      return send(res, 401, { detail: 'Invalid API key' });
    }
    const agentId = /^\/v1\/agents\/([^/]+)/.exec(path)?.[1];
    if (agentId && options.agents && !options.agents.includes(agentId)) {
      return send(res, 404, { detail: `Agent ${agentId} not found` });
    }

    if (messages && req.method === 'POST') {
      const step = steps.shift() ?? state.fallback ?? {};
      if (step.delayMs) await new Promise((r) => setTimeout(r, step.delayMs));
      if (step.drop) {
        req.socket.destroy();
        return;
      }
      if (step.status && step.status !== 200) {
        return send(res, step.status, step.body ?? { detail: `stand-in error ${step.status}` }, step.headers);
      }
      const reply = step.reply ?? state.reply(record.text ?? '', messages[1]!);
      record.answeredAt = performance.now();
      return send(
        res,
        200,
        {
          messages: [
            { id: 'message-r', message_type: 'reasoning_message', reasoning: 'thinking' },
            { id: 'message-a', message_type: 'assistant_message', content: reply },
          ],
          stop_reason: { message_type: 'stop_reason', stop_reason: 'end_turn' },
          usage: { message_type: 'usage_statistics', ...state.usage },
        },
        step.headers,
      );
    }
    if (path.replace(/\/$/, '') === '/v1/blocks' && req.method === 'POST') {
      const b = body as { label?: string; value?: string };
      return send(res, 200, { id: `block-${++blockSeq}`, label: b?.label, value: b?.value });
    }
    const block = /^\/v1\/agents\/([^/]+)\/core-memory\/blocks\/(attach|detach)\/([^/]+)$/.exec(path);
    if (block && req.method === 'PATCH') return send(res, 200, { id: block[1], name: 'test agent' });
    if (agentId && req.method === 'GET') return send(res, 200, { id: agentId, name: 'test agent' });
    return send(res, 404, { detail: `no route ${req.method} ${path}` });
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) send(res, 500, { detail: String(error) });
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  state.url = `http://127.0.0.1:${state.port}`;
  return state;
}
