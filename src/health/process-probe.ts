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
  return (await askProcesses(home, groups, open)).answer;
}

/**
 * probeProcesses in two steps: resolves once every manager is opened (its modules
 * loaded) and asked, with the promise of their answers. PM2 takes a tenth of a second
 * and more to list a thousand processes: asked before the folder checks start, it
 * answers while they run. Asked after, its modules would load only between the checks'
 * turns of the event loop, and the question would go out half-way through them.
 */
export async function askProcesses(home: string, groups: Map<ProcessManagerName, AgentPaths[]>, open: ManagerOpener | undefined): Promise<{ answer: Promise<ProcessProbe> }> {
  const probe: ProcessProbe = { managers: [], states: new Map() };
  const asked = await Promise.all(
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
        await manager.prepareStatus?.();
      } catch (error) {
        probe.managers.push({ name, available: false, message: describeError(error) });
        return;
      }
      const opened = manager;
      // Handled below, when the answer is awaited: not an unhandled rejection meanwhile.
      const status = withTimeout(opened.status(agents), STATUS_TIMEOUT_MS, `${name} did not answer within ${STATUS_TIMEOUT_MS / 1000}s`);
      status.catch(() => {});
      // In an object: an async function's promise returned as such would be waited for here.
      return {
        answered: (async () => {
          try {
            for (const info of await status) probe.states.set(info.id, info);
            probe.managers.push({ name, available: true });
          } catch (error) {
            probe.managers.push({ name, available: false, message: describeError(error) });
          } finally {
            await opened.close().catch(() => {});
          }
        })(),
      };
    }),
  );
  const answer = Promise.all(asked.map((one) => one?.answered)).then(() => {
    probe.managers.sort((a, b) => a.name.localeCompare(b.name));
    return probe;
  });
  return { answer };
}

