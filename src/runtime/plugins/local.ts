import { createServer, type Server } from 'node:net';
import { rmSync } from 'node:fs';
import { PLATFORMS } from '../../store/inbound.js';
import { wakeSocketPath } from '../wake-socket.js';
import type { Plugin, PluginContext, PluginHealth } from './types.js';

/**
 * Messages from `animus send` (platform `local`): the CLI stores them straight into
 * the agent's database and pokes the wake socket; the reply is read back from the
 * database, so delivery is a no-op marked sent.
 */
export function createLocalPlugin(ctx: PluginContext): Plugin {
  let server: Server | undefined;
  let listening = false;
  const path = wakeSocketPath(ctx.agentDir);
  return {
    name: 'local',
    platform: PLATFORMS.local,
    async start() {
      if (!path) {
        ctx.logger.info('agent folder path too long for the wake socket: `animus send` messages are picked up on the next queue poll');
        return;
      }
      // A socket file left by a killed runtime refuses connections; the pid lock says it is ours now.
      rmSync(path, { force: true });
      server = createServer((socket) => {
        socket.on('error', () => {});
        socket.end();
        ctx.wake();
      });
      await new Promise<void>((resolve) => {
        server!.once('error', (error) => {
          ctx.logger.warn('wake socket unavailable: `animus send` messages are picked up on the next queue poll', { error: error.message });
          resolve();
        });
        server!.listen(path, () => {
          listening = true;
          resolve();
        });
      });
      server.unref();
    },
    async stop() {
      if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
      if (path && listening) rmSync(path, { force: true });
      server = undefined;
      listening = false;
    },
    async deliver() {
      // The reply is already in the database, where `animus send --wait` reads it.
    },
    health(): PluginHealth {
      return { ok: true, detail: listening ? 'wake socket listening' : 'polling only' };
    },
  };
}
