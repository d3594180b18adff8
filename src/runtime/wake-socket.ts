import { connect } from 'node:net';
import { join } from 'node:path';

/**
 * A unix socket in the agent folder that wakes an idle runtime at once when another
 * process (`animus send`) has stored a message, instead of waiting for the next
 * queue poll. Best effort both ways: without it the poll still finds the message.
 */
export const WAKE_SOCKET = 'runtime.sock';

/** Unix socket paths are limited to 107 bytes on Linux. */
const MAX_SOCKET_PATH = 107;

export function wakeSocketPath(agentDir: string): string | undefined {
  const path = join(agentDir, WAKE_SOCKET);
  return Buffer.byteLength(path) <= MAX_SOCKET_PATH ? path : undefined;
}

/** Pokes the runtime of an agent folder; resolves whether a runtime was listening. */
export function pokeRuntime(agentDir: string, timeoutMs = 500): Promise<boolean> {
  const path = wakeSocketPath(agentDir);
  if (!path) return Promise.resolve(false);
  return new Promise((resolve) => {
    const socket = connect(path);
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
