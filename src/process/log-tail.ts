import { open, stat } from 'node:fs/promises';
import { redactText, secretValues } from '../core/redact.js';
import type { AgentPaths } from '../home/layout.js';
import { readEnv } from '../instances/agent-files.js';

const CHUNK = 64 * 1024;

/**
 * The last `count` lines of a file ([] when it does not exist), and `end`, the size it
 * was read up to: where following it continues, so that nothing written between the
 * tail and the follow is lost. Reads from the end, so a huge log costs little.
 */
export async function tailLines(path: string, count: number): Promise<{ lines: string[]; end: number }> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { lines: [], end: 0 };
    throw error;
  }
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
  const [out, err] = (await Promise.all([tailLines(paths.outLog, count), tailLines(paths.errLog, count)])).map((tail) => tail.lines) as [string[], string[]];
  return [...out, ...err.map((line) => `[stderr] ${line}`)].slice(-count).map((line) => redactText(line, secrets));
}

/**
 * Calls `onText` with what is appended to each file from `from` (its offset; the
 * file's size now when absent), until the signal aborts. Polls (cheap, works on every
 * filesystem) and restarts from 0 when a file shrinks (rotated or truncated).
 */
export async function followFiles(paths: string[], onText: (path: string, text: string) => void, signal: AbortSignal, from: ReadonlyMap<string, number> = new Map(), intervalMs = 250): Promise<void> {
  const offsets = new Map<string, number>();
  for (const path of paths) offsets.set(path, from.get(path) ?? (await sizeOf(path)));
  while (!signal.aborted) {
    await new Promise<void>((resolve) => {
      const onAbort = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, intervalMs);
      signal.addEventListener('abort', onAbort, { once: true });
    });
    for (const path of paths) {
      const size = await sizeOf(path);
      let from = offsets.get(path) ?? 0;
      if (size < from) from = 0;
      if (size === from) continue;
      const handle = await open(path, 'r');
      try {
        const buffer = Buffer.alloc(size - from);
        await handle.read(buffer, 0, buffer.length, from);
        onText(path, buffer.toString('utf8'));
      } finally {
        await handle.close();
      }
      offsets.set(path, size);
    }
  }
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}
