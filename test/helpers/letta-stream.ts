import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';

/**
 * The SSE side of the Letta stand-in's `POST /v1/agents/{id}/messages/stream`, as Letta server
 * 0.16.8 writes it (letta/services/streaming_service.py, letta/server/rest_api/redis_stream_manager.py,
 * letta/server/rest_api/streaming_response.py):
 *
 * - A background run's events go to a per-run log first (Redis `sse:run:{id}`), each with a seq_id
 *   from 1; the HTTP answer is a reader of that log, so a client that goes away does not stop the
 *   run, and the reader ends at the first chunk marked complete ([DONE], or an `event: error`).
 * - The reader fills `"run_id":null` and `"seq_id":null` in each chunk; events whose schema has no
 *   such field (stop_reason, usage_statistics, [DONE]) pass unchanged.
 * - Keepalive pings are added by the reader only (not in the log): one after every `keepaliveMs`
 *   with no data, carrying the last seq_id seen; after `maxSilenceMs` of pings only, the answer ends
 *   without a terminal event (the run goes on).
 * - The status line and headers go out with the first chunk (StreamingResponseWithStatusCode), so
 *   without pings a thinking run sends no byte at all.
 */

export interface LogChunk {
  seq: number;
  data: string;
  complete: boolean;
}

/** One run's stored chunks (the Redis stream) and the readers waiting for more. */
export class RunLog {
  readonly chunks: LogChunk[] = [];
  private readonly listeners = new Set<() => void>();
  write(data: string, complete = false): void {
    this.chunks.push({ seq: this.chunks.length + 1, data, complete });
    for (const listener of [...this.listeners]) listener();
  }
  listen(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/** LettaMessage.date as the server serializes it: isoformat(timespec="seconds") in UTC. */
export function lettaDate(date: Date = new Date()): string {
  return date.toISOString().replace(/\.\d{3}Z$/, '+00:00');
}

/** A LettaMessage subclass as pydantic dumps it: the base fields in their order, then the type's own. */
export function messageJson(message: { id: string; message_type: string; date: string; run_id: string | null; otid?: string | null; sender_id?: string; [key: string]: unknown }): string {
  const { id, message_type, date, run_id, otid, sender_id, ...own } = message;
  return JSON.stringify({ id, date: lettaDate(new Date(date)), name: null, message_type, otid: otid ?? null, sender_id: sender_id ?? null, step_id: null, is_err: null, seq_id: null, run_id, ...own });
}

export const data = (json: string) => `data: ${json}\n\n`;
export const DONE = 'data: [DONE]\n\n';

export function pingJson(runId: string, seqId: number | null): string {
  return messageJson({ id: `ping-${randomUUID()}`, message_type: 'ping', date: new Date().toISOString(), run_id: runId, seq_id: seqId });
}

/** LettaErrorMessage, written as `event: error`. */
export function errorEvent(runId: string, errorType: string, message: string, detail: string | null): string {
  return `event: error\ndata: ${JSON.stringify({ message_type: 'error_message', run_id: runId, error_type: errorType, message, detail, seq_id: null })}\n\n`;
}

export interface ReaderOptions {
  runId: string;
  /** Background: seq_ids are filled in (without Redis in between they stay null). */
  background: boolean;
  /** include_pings: keepalives every keepaliveMs of silence (0: the server's enable_keepalive=false). */
  pings: boolean;
  keepaliveMs: number;
  maxSilenceMs: number;
  /** starting_after: the seq_id after which to read (a resumed stream). */
  startAfter?: number;
  /** Hold the first byte this long. */
  answerDelayMs?: number;
  /** Destroy the connection right after the first chunk went out. */
  dropAfterFirst?: boolean;
  /** After the first chunk, write nothing (no pings either) for this long, then go on. */
  stallMs?: number;
  onEnd?: () => void;
}

/** Answers one HTTP request as the server's reader of a run's log does. */
export function streamRun(res: ServerResponse, log: RunLog, options: ReaderOptions): void {
  let next = options.startAfter ?? 0;
  let lastSeq: number | null = null;
  let lastData = Date.now();
  let keepalive: NodeJS.Timeout | undefined;
  let held = false;
  let ended = false;
  let stop = () => {};
  const finish = () => {
    if (ended) return;
    ended = true;
    stop();
    clearTimeout(keepalive);
    options.onEnd?.();
  };
  res.on('close', finish);

  const writeRaw = (chunk: string, written?: () => void) => {
    if (res.destroyed) return finish();
    if (!res.headersSent) res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
    res.write(chunk, written);
  };
  const armKeepalive = () => {
    clearTimeout(keepalive);
    if (!options.pings || options.keepaliveMs <= 0 || ended) return;
    keepalive = setTimeout(() => {
      if (held || ended) return;
      if (Date.now() - lastData > options.maxSilenceMs) {
        // add_keepalive_to_stream gives up on a ping-only stream: the answer ends with no terminal event.
        finish();
        res.end();
        return;
      }
      writeRaw(data(pingJson(options.runId, lastSeq)));
      armKeepalive();
    }, options.keepaliveMs);
  };
  const pump = () => {
    if (held || ended) return;
    while (next < log.chunks.length) {
      const chunk = log.chunks[next++]!;
      let text = chunk.data.replace('"run_id":null', `"run_id":"${options.runId}"`);
      if (options.background) text = text.replace('"seq_id":null', `"seq_id":${chunk.seq}`);
      const seq = /"seq_id":(\d+)/.exec(text);
      if (seq) lastSeq = Number(seq[1]);
      lastData = Date.now();
      const isFirst = next === (options.startAfter ?? 0) + 1;
      if (isFirst && options.dropAfterFirst) {
        finish();
        // Destroyed once the first chunk is on the wire, so the client sees it and then the reset.
        writeRaw(text, () => res.socket?.destroy());
        return;
      }
      writeRaw(text);
      if (chunk.complete) {
        finish();
        res.end();
        return;
      }
      if (isFirst && options.stallMs) {
        held = true;
        clearTimeout(keepalive);
        setTimeout(() => {
          held = false;
          lastData = Date.now();
          armKeepalive();
          pump();
        }, options.stallMs);
        return;
      }
    }
    armKeepalive();
  };
  const start = () => {
    if (ended) return;
    stop = log.listen(pump);
    pump();
  };
  if (options.answerDelayMs) setTimeout(start, options.answerDelayMs);
  else start();
}
