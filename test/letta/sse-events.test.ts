import { describe, expect, it } from 'vitest';
import { SseRunReader } from '../../src/letta/sse-events.js';

const RUN = 'run-6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b';
const ping = (seq?: number) => `data: {"id":"ping-1","date":"2026-12-01T10:00:00Z","message_type":"ping","run_id":"${RUN}"${seq ? `,"seq_id":${seq}` : ''}}\n\n`;
const assistant = `data: {"id":"message-2","message_type":"assistant_message","content":"hello there","run_id":"${RUN}","seq_id":2}\n\n`;
const stop = (reason: string) => `data: {"message_type":"stop_reason","stop_reason":"${reason}"}\n\n`;
const usage = 'data: {"message_type":"usage_statistics","prompt_tokens":12,"completion_tokens":4,"total_tokens":16,"step_count":1}\n\n';

describe('SseRunReader', () => {
  it('names the run from the first ping and keeps the messages, stop reason and usage until [DONE]', () => {
    const reader = new SseRunReader();
    expect(reader.push(ping(1))).toBe(true);
    expect(reader.runId).toBe(RUN);
    expect(reader.done).toBe(false);
    reader.push(`${assistant}${stop('end_turn')}${usage}data: [DONE]\n\n`);
    expect(reader.done).toBe(true);
    expect(reader.messages).toEqual([{ id: 'message-2', message_type: 'assistant_message', content: 'hello there', run_id: RUN, seq_id: 2 }]);
    expect(reader.stopReason).toBe('end_turn');
    expect(reader.usage).toEqual({ promptTokens: 12, completionTokens: 4, totalTokens: 16 });
    expect(reader.error).toBeUndefined();
  });

  it('reads events cut anywhere across chunks, with CRLF line ends, comments and multi-line data', () => {
    const text = `: a comment line\r\n\r\n${ping(1).replace(/\n/g, '\r\n')}data: {"message_type":"assistant_message",\ndata: "content":"two lines"}\n\n${stop('end_turn')}data: [DONE]\n\n`;
    const reader = new SseRunReader();
    for (let i = 0; i < text.length; i += 7) reader.push(text.slice(i, i + 7));
    expect(reader.runId).toBe(RUN);
    expect(reader.messages.map((m) => m.content)).toEqual(['two lines']);
    expect(reader.done).toBe(true);
  });

  it('ends at an error event, which Letta writes after the stop reason of a failed run, and keeps its text', () => {
    const reader = new SseRunReader();
    // In background mode the error is the stream's last chunk: no [DONE] comes after it.
    reader.push(`${ping()}${stop('llm_api_error')}event: error\ndata: {"message_type":"error_message","run_id":"${RUN}","error_type":"llm_rate_limit","message":"Rate limited by the provider","detail":"429 from upstream"}\n\n`);
    expect(reader.stopReason).toBe('llm_api_error');
    expect(reader.error).toBe('llm_rate_limit: Rate limited by the provider: 429 from upstream');
    expect(reader.messages).toEqual([]);
    expect(reader.done).toBe(true);
  });

  it('skips what is not an event of Letta (not JSON, not an object) and stops reading at [DONE]', () => {
    const reader = new SseRunReader();
    reader.push(`data: not json\n\ndata: [1,2]\n\n${ping()}data: [DONE]\n\n${assistant}`);
    expect(reader.runId).toBe(RUN);
    expect(reader.messages).toEqual([]);
    expect(reader.done).toBe(true);
  });

  it('waits for the blank line that ends an event before reading it', () => {
    const reader = new SseRunReader();
    expect(reader.push(`data: {"message_type":"ping","run_id":"${RUN}"}\n`)).toBe(false);
    expect(reader.runId).toBeUndefined();
    expect(reader.push('\n')).toBe(true);
    expect(reader.runId).toBe(RUN);
  });
});
