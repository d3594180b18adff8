import type { FileHandle } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { openAgentFile } from '../core/agent-fs.js';
import { redactText, secretValues } from '../core/redact.js';
import { rotatedNames, type AgentPaths } from '../home/layout.js';
import { readEnv } from '../instances/agent-files.js';

const CHUNK = 64 * 1024;

/**
 * The last `count` lines of a log in an agent folder ([] when it does not exist), and
 * `end`, the size it was read up to: where following it continues, so that nothing
 * written between the tail and the follow is lost. Reads from the end, so a huge log
 * costs little. `count` Infinity reads it all (filters need every line). Opened
 * through core/agent-fs: a log that is a symlink (to another agent's .env) or a hard
 * link to another file is refused, never printed.
 */
export async function tailLines(paths: AgentPaths, path: string, count: number): Promise<{ lines: string[]; end: number }> {
  const handle = await openLog(paths, path);
  if (!handle) return { lines: [], end: 0 };
  try {
    const size = (await handle.stat()).size;
    let position = size;
    let text = '';
    while (position > 0 && count > 0) {
      const length = Math.min(CHUNK, position);
      position -= length;
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, position);
      text = buffer.toString('utf8') + text;
      if (text.split('\n').length > count + 1) break;
    }
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    return { lines: count > 0 ? lines.slice(-count) : [], end: size };
  } finally {
    await handle.close();
  }
}

function openLog(paths: AgentPaths, path: string): Promise<FileHandle | undefined> {
  return openAgentFile(paths.dir, path.slice(paths.dir.length + 1), { singleLink: true });
}

/**
 * The lines of a log's rotated files, one file at a time, newest first: where a reader
 * goes on when the current file holds fewer lines than it wants (just rotated, or a
 * filter reaching back). Opened like the log itself (no link followed); a missing file
 * ends the chain, and a `.1` left mid-compression stands for the `.1.gz` beside it.
 */
export async function* rotatedLines(paths: AgentPaths, path: string, keep: number): AsyncGenerator<string[]> {
  let plainSeen = false;
  for (const name of rotatedNames(path, keep)) {
    if (plainSeen && name === `${path}.1.gz`) continue;
    const handle = await openLog(paths, name);
    if (!handle) {
      if (name.endsWith('.gz')) return;
      continue;
    }
    let data: Buffer;
    try {
      data = await handle.readFile();
    } finally {
      await handle.close();
    }
    if (name.endsWith('.gz')) data = await promisify(gunzip)(data);
    else plainSeen = true;
    const lines = data.toString('utf8').split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    yield lines;
  }
}

/** The secret values of an agent's `.env`, to mask in anything shown from its logs. */
export async function agentSecrets(paths: AgentPaths): Promise<string[]> {
  try {
    return secretValues(await readEnv(paths));
  } catch {
    return [];
  }
}

/** The last lines of an agent's stdout and stderr logs, secrets masked: what a failed start reports. */
export async function agentLogTail(paths: AgentPaths, count = 10): Promise<string[]> {
  const secrets = await agentSecrets(paths);
  const read = (path: string) => tailLines(paths, path, count).then((t) => t.lines, (error: Error) => [`(${error.message})`]);
  const [out, err] = await Promise.all([read(paths.outLog), read(paths.errLog)]);
  return [...out, ...err.map((line) => `[stderr] ${line}`)].slice(-count).map((line) => redactText(line, secrets));
}

/**
 * Calls `onText` with what is appended to each file from `from` (its offset; the
 * file's size now when absent), until the signal aborts. Polls (cheap, works on every
 * filesystem). Each file is read through an fd of its own: when the name comes to
 * point at a new file (the runtime rotated it), the old fd is read to its end first,
 * then the new file from 0, so no line written around a rotation is skipped. A file
 * that shrinks in place (trimmed) is read again from 0.
 */
export async function followFiles(paths: AgentPaths, files: string[], onText: (path: string, text: string) => void, signal: AbortSignal, from: ReadonlyMap<string, number> = new Map(), intervalMs = 250): Promise<void> {
  const open = new Map<string, { handle: FileHandle; ino: number; offset: number }>();
  const attach = async (path: string, offset: number | undefined) => {
    const handle = await openLog(paths, path).catch(() => undefined);
    if (!handle) return;
    const info = await handle.stat();
    open.set(path, { handle, ino: info.ino, offset: Math.min(offset ?? info.size, info.size) });
  };
  const drain = async (path: string) => {
    const state = open.get(path)!;
    const size = (await state.handle.stat()).size;
    if (size < state.offset) state.offset = 0;
    if (size === state.offset) return;
    const buffer = Buffer.alloc(size - state.offset);
    await state.handle.read(buffer, 0, buffer.length, state.offset);
    state.offset = size;
    onText(path, buffer.toString('utf8'));
  };
  try {
    for (const path of files) await attach(path, from.get(path));
    while (!signal.aborted) {
      await sleep(intervalMs, signal);
      for (const path of files) {
        if (!open.has(path)) {
          await attach(path, 0);
          if (open.has(path)) await drain(path);
          continue;
        }
        await drain(path);
        const current = await statIno(paths, path);
        if (current !== undefined && current !== open.get(path)!.ino) {
          // Rotated: what the old file got after our last read is drained above; now the new one.
          await open.get(path)!.handle.close();
          open.delete(path);
          await attach(path, 0);
          if (open.has(path)) await drain(path);
        }
      }
    }
  } finally {
    for (const state of open.values()) await state.handle.close();
  }
}

async function statIno(paths: AgentPaths, path: string): Promise<number | undefined> {
  const handle = await openLog(paths, path).catch(() => undefined);
  if (!handle) return undefined;
  try {
    return (await handle.stat()).ino;
  } finally {
    await handle.close();
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
