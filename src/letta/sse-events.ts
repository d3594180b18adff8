import type { LettaMessage, RunUsage } from './client.js';

/**
 * Reads the server-sent events of a Letta message stream as they arrive, and keeps what
 * a run's end needs. Letta 0.16's stream (`POST /v1/agents/{id}/messages/stream`) writes
 * each event as `data: <json>\n\n`; an error as `event: error\ndata: <json>\n\n`; the
 * end as `data: [DONE]\n\n`. In background mode every event's JSON carries the run's
 * `run_id` (and its `seq_id`), and with `include_pings` the first event is a ping naming
 * the run, before the model has done anything. Between events come keep-alive pings.
 * The final events are the stop reason (`message_type: "stop_reason"`) and the usage
 * (`"usage_statistics"`); every other event is one of the run's messages. A failed run
 * ends with its stop reason and an error event instead: in background mode the server
 * stores that error as the stream's last chunk, so no [DONE] follows it.
 */
export class SseRunReader {
  runId: string | undefined;
  readonly messages: LettaMessage[] = [];
  stopReason: string | null = null;
  usage: RunUsage = { promptTokens: null, completionTokens: null, totalTokens: null };
  /** The text of an `event: error` (or an error_message event). */
  error: string | undefined;
  /** [DONE], or an error event: nothing follows either. */
  done = false;
  private partial = '';

  /** Feeds the next piece of the body; returns whether it held a whole event. */
  push(text: string): boolean {
    this.partial += text;
    let found = false;
    for (;;) {
      const end = eventEnd(this.partial);
      if (!end) return found;
      const block = this.partial.slice(0, end.at);
      this.partial = this.partial.slice(end.at + end.length);
      found = true;
      this.read(block);
      if (this.done) return true;
    }
  }

  private read(block: string): void {
    let name = 'message';
    const data: string[] = [];
    for (const line of block.split(/\r?\n/)) {
      // SSE: `field: value` (one optional space), `:` starts a comment.
      if (line === '' || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? '' : line.slice(colon + (line[colon + 1] === ' ' ? 2 : 1));
      if (field === 'event') name = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length === 0) return;
    const text = data.join('\n');
    if (text === '[DONE]') {
      this.done = true;
      return;
    }
    let event: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return;
      event = parsed as Record<string, unknown>;
    } catch {
      return; // Not an event of Letta's: skipped, the stream goes on.
    }
    if (this.runId === undefined && typeof event.run_id === 'string' && event.run_id !== '') this.runId = event.run_id;
    const type = event.message_type;
    if (name === 'error' || type === 'error_message') {
      this.error = errorText(event);
      this.done = true;
      return;
    }
    if (type === 'ping') return;
    if (type === 'stop_reason') {
      if (typeof event.stop_reason === 'string') this.stopReason = event.stop_reason;
      return;
    }
    if (type === 'usage_statistics') {
      this.usage = usageOf(event);
      return;
    }
    this.messages.push(event as LettaMessage);
  }
}

function eventEnd(text: string): { at: number; length: number } | undefined {
  const lf = text.indexOf('\n\n');
  const crlf = text.indexOf('\r\n\r\n');
  if (lf === -1 && crlf === -1) return undefined;
  if (crlf !== -1 && (lf === -1 || crlf < lf)) return { at: crlf, length: 4 };
  return { at: lf, length: 2 };
}

function errorText(event: Record<string, unknown>): string {
  const parts = [event.error_type, event.message, event.detail].filter((part): part is string => typeof part === 'string' && part !== '');
  return parts.length > 0 ? [...new Set(parts)].join(': ').slice(0, 300) : 'the stream reported an error';
}

/** A run's token counts, from `GET /v1/runs/{id}/usage` or a usage_statistics event (the same fields). */
export function usageOf(record: Record<string, unknown> | undefined): RunUsage {
  return { promptTokens: num(record?.prompt_tokens), completionTokens: num(record?.completion_tokens), totalTokens: num(record?.total_tokens) };
}

function num(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}
