import { setTimeout as sleep } from 'node:timers/promises';
import { AnimusError, describeError } from '../core/errors.js';
import { readSettings, writeSettings } from '../instances/agent-files.js';
import { requireAgent } from '../instances/registry.js';
import { withProcessManager } from '../process/open.js';
import { RUNNING_STATES } from '../process/types.js';
import { kubectl, type PodStatus } from './kubectl.js';
import { buildAgentManifests, podName, POD_INCOMING } from './manifests.js';
import { writePlacement, type Placement } from './placement.js';
import { normalizeManifestOptions } from './render.js';
import { readEnvText } from '../instances/agent-files.js';
import type { AgentPaths } from '../home/layout.js';

/**
 * `animus kubernetes push <id>`: moves a local agent into the cluster without ever running
 * it twice. The local instance is stopped first, then backed up (so nothing written after
 * the backup is left behind), the manifests are applied, and the archive is copied into the
 * pod's volume while its init container waits for it (before the runtime's first start).
 * Once the pod is ready the local folder records where the agent runs (kubernetes.json) and
 * its process manager becomes `kubernetes`. A failure before that starts the local instance
 * again if it was running; the local folder is never changed.
 */
export interface PushOptions {
  home: string;
  id: string;
  env: NodeJS.ProcessEnv;
  context?: string;
  namespace?: string;
  image?: string;
  storageClass?: string;
  storage?: string;
  from?: string;
  timeout?: string;
  onStep?: (step: string) => void;
}

export interface PushResult {
  id: string;
  context?: string;
  namespace: string;
  statefulSet: string;
  pod: string;
  archive: string;
  stoppedLocally: boolean;
}

export async function pushAgent(options: PushOptions): Promise<PushResult> {
  const paths = await requireAgent(options.home, options.id);
  const { withAgentLock } = await import('../instances/operation-lock.js');
  return withAgentLock(paths, { command: 'kubernetes push' }, () => pushLocked(options, paths));
}

async function pushLocked(options: PushOptions, paths: AgentPaths): Promise<PushResult> {
  const step = options.onStep ?? (() => {});
  const settings = await readSettings(paths);
  if ((settings.process_manager as string) === 'kubernetes') throw new AnimusError('EEXISTS', `${paths.agent.id} already runs on Kubernetes (its kubernetes.json says where)`);
  const manifestOptions = normalizeManifestOptions({ ...options, awaitPush: true });
  const timeoutMs = parseTimeout(options.timeout) * 1000;
  const k = kubectl({ context: options.context, namespace: manifestOptions.namespace, env: options.env });
  const pod = podName(paths.agent);
  step('checking the cluster');
  const existing = await k.json<PodStatus>(['get', 'pod', pod]);
  if (existing && !isWaitingForPush(existing)) throw new AnimusError('EEXISTS', `${pod} already runs in ${k.namespace}: the agent is in the cluster already`);

  step('stopping the local instance');
  const wasRunning = await withProcessManager(settings.process_manager, { home: options.home, env: options.env }, async (manager) => {
    const [info] = await manager.status([paths]);
    const running = info !== undefined && RUNNING_STATES.has(info.state);
    if (running) {
      const [stopped] = await manager.stop([paths]);
      if (stopped?.outcome === 'failed') throw new AnimusError('EPM', `cannot stop ${paths.agent.id} here: ${stopped.message ?? 'failed'}; nothing was pushed`);
    }
    return running;
  });
  try {
    let archive = options.from;
    if (!archive) {
      step('backing up');
      const { backupAgent, defaultBackupDir } = await import('../backup/create-backup.js');
      archive = (await backupAgent(paths, { outDir: defaultBackupDir(options.home) })).archive;
    }
    step('applying the manifests');
    const manifests = buildAgentManifests(paths.agent, settings, await readEnvText(paths), manifestOptions);
    const list = { apiVersion: 'v1', kind: 'List', items: [manifests.secret, manifests.service, manifests.statefulSet] };
    await k.run(['apply', '-f', '-'], { input: JSON.stringify(list) });

    step(`waiting for ${pod} to wait for the archive`);
    await until(timeoutMs, async () => {
      const status = await k.json<PodStatus>(['get', 'pod', pod]);
      return status !== undefined && isWaitingForPush(status);
    }, `${pod} did not reach its prepare step`);
    step('copying the archive into the volume');
    const target = `${POD_INCOMING}/${paths.agent.id}.animus-backup`;
    await k.run(['exec', pod, '-c', 'prepare', '--', 'mkdir', '-p', POD_INCOMING]);
    await k.run(['cp', archive, `${k.namespace}/${pod}:${target}.part`, '-c', 'prepare'], { timeoutMs });
    // Renamed once whole: the init container never restores half an archive.
    await k.run(['exec', pod, '-c', 'prepare', '--', 'mv', `${target}.part`, target]);
    step(`waiting for ${pod} to be ready`);
    await k.run(['wait', '--for=condition=Ready', `pod/${pod}`, `--timeout=${Math.ceil(timeoutMs / 1000)}s`], { timeoutMs: timeoutMs + 10_000 });

    const placement: Placement = { ...(k.context ? { context: k.context } : {}), namespace: k.namespace, statefulSet: manifests.name, pod, container: 'runtime', pushedAt: new Date().toISOString() };
    await writePlacement(paths, placement);
    await writeSettings(paths, { ...settings, process_manager: 'kubernetes' as typeof settings.process_manager });
    return { id: paths.agent.id, context: k.context, namespace: k.namespace, statefulSet: manifests.name, pod, archive, stoppedLocally: wasRunning };
  } catch (error) {
    if (wasRunning) {
      await withProcessManager(settings.process_manager, { home: options.home, env: options.env }, (manager) => manager.start([paths])).catch(() => {});
    }
    throw new AnimusError(error instanceof AnimusError ? error.code : 'EFAILED', `push of ${paths.agent.id} stopped: ${describeError(error)}${wasRunning ? '; it runs here again' : ''}`, { cause: error });
  }
}

function isWaitingForPush(pod: PodStatus): boolean {
  const prepare = pod.status?.initContainerStatuses?.find((status) => status.name === 'prepare');
  return prepare?.state?.running !== undefined;
}

function parseTimeout(raw: string | undefined): number {
  if (raw === undefined) return 300;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 86_400) throw new AnimusError('EUSAGE', `--timeout "${raw}" is not a number of seconds from 1 to 86400`);
  return n;
}

async function until(timeoutMs: number, check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new AnimusError('EFAILED', `${what} within ${Math.round(timeoutMs / 1000)} s`);
    await sleep(1000);
  }
}
