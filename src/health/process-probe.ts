import type { ProcessManagerName } from '../config/settings.js';
import { describeError } from '../core/errors.js';
import type { AgentPaths } from '../home/layout.js';
import { openProcessManager } from '../process/open.js';
import type { ProcessInfo, ProcessManager } from '../process/types.js';
import { withTimeout } from '../core/timeout.js';

/** Opens the process manager of that name for a home; undefined when none can be had here. */
export type ManagerOpener = (name: ProcessManagerName, home: string) => Promise<ProcessManager | undefined>;

export interface ProcessProbe {
  managers: Array<{ name: ProcessManagerName; available: boolean; message?: string }>;
  /** By agent id; an agent missing here has state `unknown`. */
  states: Map<string, ProcessInfo>;
}

/** The process managers of src/process, opened for the home with the caller's environment (PM2_HOME). */
export function managerOpener(env: NodeJS.ProcessEnv): ManagerOpener {
  return (name, home) => openProcessManager(name, { home, env });
}

/** How long one manager may take to answer before its agents are reported `unknown`. */
const STATUS_TIMEOUT_MS = 15_000;

/**
 * One status call per process manager for all its agents (never one per agent). A
 * manager that cannot be opened or does not answer in time makes its agents'
 * process state `unknown`: health still runs and reports everything else.
 */
export async function probeProcesses(home: string, groups: Map<ProcessManagerName, AgentPaths[]>, open: ManagerOpener | undefined): Promise<ProcessProbe> {
  const probe: ProcessProbe = { managers: [], states: new Map() };
  await Promise.all(
    [...groups].map(async ([name, agents]) => {
      if (!open) {
        probe.managers.push({ name, available: false, message: 'not asked (--no-process)' });
        return;
      }
      let manager: ProcessManager | undefined;
      try {
        manager = await open(name, home);
        if (!manager) {
          probe.managers.push({ name, available: false, message: `${name} is not available on this machine` });
          return;
        }
        const infos = await withTimeout(manager.status(agents), STATUS_TIMEOUT_MS, `${name} did not answer within ${STATUS_TIMEOUT_MS / 1000}s`);
        for (const info of infos) probe.states.set(info.id, info);
        probe.managers.push({ name, available: true });
      } catch (error) {
        probe.managers.push({ name, available: false, message: describeError(error) });
      } finally {
        await manager?.close().catch(() => {});
      }
    }),
  );
  probe.managers.sort((a, b) => a.name.localeCompare(b.name));
  return probe;
}

