import { connect } from 'node:net';
import { join } from 'node:path';

/**
 * A read-only look at a running PM2 daemon over its RPC socket (`$PM2_HOME/rpc.sock`),
 * without PM2's API: loading the API costs several times more than asking, and even
 * PM2's socket modules (axon, with its debug and colour modules) cost more than the
 * few lines that speak their protocol. `animus status`, `list` and `health` use this;
 * anything that changes state uses the API.
 *
 * The protocol, as PM2's axon req/rep sockets and axon-rpc speak it: each message is
 * one AMP frame, a byte `version << 4 | argc`, then each argument as a 32-bit
 * big-endian length and its bytes; an argument is `j:<json>` or `s:<string>`. A call
 * is `[j:{type:'call', method, args}, s:<id>]`; the reply is `[j:{args:[result]}
 * or j:{error, stack}, s:<id>]`.
 */
export async function listOverRpc<T>(pm2Home: string, timeoutMs = 10_000): Promise<T[]> {
  const id = questionId();
  const reply = answerOf(await exchange(join(pm2Home, 'rpc.sock'), question(LIST_METHOD, [{}], id), timeoutMs), id, LIST_METHOD);
  return Array.isArray(reply) ? (reply as T[]) : [];
}

/** The method that lists every process, with its memory and CPU. */
const LIST_METHOD = 'getMonitorData';

const AMP_VERSION = 1;

function questionId(): string {
  return `${process.pid}:0`;
}

function question(method: string, args: unknown[], id: string): Buffer {
  return encodeFrame([`j:${JSON.stringify({ type: 'call', method, args })}`, `s:${id}`]);
}

/** The result in an answer frame; throws for an answer to another question, or the daemon's refusal. */
function answerOf(frame: Buffer, id: string, method: string): unknown {
  const [body, replyId] = decodeFrame(frame);
  if (replyId?.toString('utf8') !== `s:${id}`) throw new Error('the PM2 daemon answered another question');
  const message = unpackJson(body) as { args?: unknown[]; error?: unknown } | null;
  if (message && typeof message === 'object' && 'error' in message) throw new Error(`the PM2 daemon refused ${method}: ${String(message.error)}`);
  return message?.args?.[0];
}

function encodeFrame(parts: string[]): Buffer {
  const buffers = parts.map((part) => Buffer.from(part, 'utf8'));
  const frame = Buffer.alloc(1 + buffers.reduce((n, b) => n + 4 + b.length, 0));
  frame[0] = (AMP_VERSION << 4) | buffers.length;
  let offset = 1;
  for (const buffer of buffers) {
    frame.writeUInt32BE(buffer.length, offset);
    buffer.copy(frame, offset + 4);
    offset += 4 + buffer.length;
  }
  return frame;
}

function decodeFrame(frame: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  let offset = 1;
  for (let i = 0; i < (frame[0]! & 0xf); i++) {
    const length = frame.readUInt32BE(offset);
    parts.push(frame.subarray(offset + 4, offset + 4 + length));
    offset += 4 + length;
  }
  return parts;
}

function unpackJson(part: Buffer | undefined): unknown {
  if (!part || part[0] !== 0x6a /* j */ || part[1] !== 0x3a /* : */) throw new Error('the PM2 daemon sent an answer animus cannot read');
  return JSON.parse(part.toString('utf8', 2));
}

/**
 * Sends one frame and resolves with the first whole frame that comes back. The chunks
 * are joined once, when the frame is complete (a thousand processes: two megabytes).
 */
function exchange(socketPath: string, request: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path: socketPath });
    const chunks: Buffer[] = [];
    let received = 0;
    let length: number | undefined;
    const timer = setTimeout(() => finish(new Error(`no answer from the PM2 daemon within ${timeoutMs / 1000} s`)), timeoutMs);
    const finish = (error: Error | null, frame?: Buffer) => {
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(frame!);
    };
    socket.once('connect', () => socket.write(request));
    socket.once('error', (error) => finish(error));
    socket.once('close', () => finish(new Error('the PM2 daemon closed the connection before it answered')));
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      length ??= frameLength(chunks, received);
      if (length !== undefined && received >= length) finish(null, Buffer.concat(chunks, received).subarray(0, length));
    });
  });
}

/** The length of the frame that `chunks` begin, once enough of it arrived to tell. */
function frameLength(chunks: Buffer[], received: number): number | undefined {
  if (received < 1) return undefined;
  const argc = chunks[0]![0]! & 0xf;
  let offset = 1;
  for (let i = 0; i < argc; i++) {
    if (received < offset + 4) return undefined;
    offset += 4 + uint32At(chunks, offset);
  }
  return offset;
}

/** The big-endian 32-bit number at `offset` of the chunks taken as one buffer. */
function uint32At(chunks: Buffer[], offset: number): number {
  let value = 0;
  for (let k = 0; k < 4; k++) value = value * 256 + byteAt(chunks, offset + k);
  return value;
}

function byteAt(chunks: Buffer[], offset: number): number {
  let rest = offset;
  for (const chunk of chunks) {
    if (rest < chunk.length) return chunk[rest]!;
    rest -= chunk.length;
  }
  return 0;
}
