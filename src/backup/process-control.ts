import { AnimusError, describeError } from '../core/errors.js';
import type { Settings } from '../config/settings.js';
import type { AgentPaths } from '../home/layout.js';
import { openProcessManager } from '../process/open.js';
import type { ProcessManager } from '../process/types.js';
import type { ProcessControl } from './restore-backup.js';

/** Errors that mean "no such manager here" rather than "it refused". */
const UNAVAILABLE = new Set(['ENOPM', 'ENOSYSTEMD']);

/** Restore's stop and start through the agent's own process manager (settings.process_manager). */
export function processControlFor(home: string, env: NodeJS.ProcessEnv): ProcessControl {
  const withManager = async <T>(settings: Settings | undefined, work: (manager: ProcessManager) => Promise<T>): Promise<T | { unavailable: string }> => {
    const name = settings?.process_manager ?? 'pm2';
    let manager: ProcessManager;
    try {
      manager = await openProcessManager(name, { home, env });
    } catch (error) {
      return { unavailable: `${name}: ${describeError(error)}` };
    }
    try {
      return await work(manager);
    } catch (error) {
      if (error instanceof AnimusError && UNAVAILABLE.has(error.code)) return { unavailable: `${name}: ${error.message}` };
      throw error;
    } finally {
      await manager.close().catch(() => {});
    }
  };
  return {
    stop: (paths: AgentPaths, settings) =>
      withManager(settings, async (manager) => {
        const [result] = await manager.stop([paths]);
        if (!result || result.outcome === 'failed') {
          throw new AnimusError('EPM', `cannot stop ${paths.agent.id} (${result?.message ?? 'no answer'}): nothing was changed; stop it by hand and try again`);
        }
        return { wasRunning: result.outcome === 'done' };
      }),
    start: (paths: AgentPaths, settings) =>
      withManager(settings, async (manager) => {
        const [result] = await manager.start([paths]);
        if (result && result.outcome !== 'failed') return { ok: true as const };
        return { ok: false as const, message: result?.message ?? 'no answer from the process manager' };
      }),
  };
}
