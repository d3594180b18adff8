import { setTimeout as sleep } from 'node:timers/promises';
import { AnimusError, describeError } from '../core/errors.js';
import type { AgentPaths } from '../home/layout.js';
import { kubectl, type Kubectl, type PodStatus } from '../kubernetes/kubectl.js';
import { readPlacement, type Placement } from '../kubernetes/placement.js';
import type { ProcessActionResult, ProcessInfo, ProcessManager, ProcessState } from './types.js';

/**
 * Agents pushed to a cluster (`animus kubernetes push`), driven through kubectl with the
 * context and namespace each agent's kubernetes.json records: start and stop scale its
 * StatefulSet between 1 and 0 (never above 1), restart deletes the pod (the StatefulSet
 * makes it again, on the same volume), status reads the pod.
 */
export interface KubernetesManagerOptions {
  env?: NodeJS.ProcessEnv;
  /** How long start and restart wait for the pod to be ready (default 180 s). */
  readyTimeoutS?: number;
}

interface Target {
  paths: AgentPaths;
  placement: Placement;
  k: Kubectl;
}

export class KubernetesManager implements ProcessManager {
  readonly name = 'kubernetes' as const;
  private readonly env?: NodeJS.ProcessEnv;
  private readonly readyTimeoutS: number;

  constructor(options: KubernetesManagerOptions = {}) {
    this.env = options.env;
    this.readyTimeoutS = options.readyTimeoutS ?? 180;
  }

  start(agents: AgentPaths[]): Promise<ProcessActionResult[]> {
    return this.each(agents, async (target, info) => {
      if (info.state === 'online') return { id: target.paths.agent.id, outcome: 'already', message: 'already running', info };
      await target.k.run(['scale', 'statefulset', target.placement.statefulSet, '--replicas=1']);
      return this.awaitReady(target);
    });
  }

  stop(agents: AgentPaths[]): Promise<ProcessActionResult[]> {
    return this.each(agents, async (target, info) => {
      if (info.state === 'stopped') return { id: target.paths.agent.id, outcome: 'already', message: 'already stopped', info };
      await target.k.run(['scale', 'statefulset', target.placement.statefulSet, '--replicas=0']);
      await target.k.run(['wait', '--for=delete', `pod/${target.placement.pod}`, `--timeout=${this.readyTimeoutS}s`], { timeoutMs: (this.readyTimeoutS + 10) * 1000, reject: false });
      return { id: target.paths.agent.id, outcome: 'done', info: await this.read(target) };
    });
  }

  restart(agents: AgentPaths[]): Promise<ProcessActionResult[]> {
    return this.each(agents, async (target, info) => {
      if (info.state === 'stopped') await target.k.run(['scale', 'statefulset', target.placement.statefulSet, '--replicas=1']);
      else await target.k.run(['delete', 'pod', target.placement.pod, '--wait=true'], { timeoutMs: (this.readyTimeoutS + 10) * 1000 });
      return this.awaitReady(target);
    });
  }

  /** Deletes the StatefulSet, its Service and Secret; the volume (PVC) and its data stay. */
  async unregister(agents: AgentPaths[]): Promise<void> {
    for (const paths of agents) {
      const target = await this.target(paths);
      await target.k.run(['delete', 'statefulset,service', target.placement.statefulSet, '--ignore-not-found']);
      await target.k.run(['delete', 'secret', `${target.placement.statefulSet}-env`, '--ignore-not-found']);
    }
  }

  async status(agents: AgentPaths[] = []): Promise<ProcessInfo[]> {
    const infos: ProcessInfo[] = [];
    for (const paths of agents) {
      try {
        infos.push(await this.read(await this.target(paths)));
      } catch {
        infos.push({ id: paths.agent.id, manager: 'kubernetes', state: 'unknown' });
      }
    }
    return infos;
  }

  async close(): Promise<void> {}

  private async target(paths: AgentPaths): Promise<Target> {
    const placement = await readPlacement(paths);
    if (!placement) throw new AnimusError('ENOTFOUND', `${paths.agent.id} has no kubernetes.json: push it with \`animus kubernetes push ${paths.agent.id}\``);
    return { paths, placement, k: kubectl({ context: placement.context, namespace: placement.namespace, env: this.env }) };
  }

  private async read(target: Target): Promise<ProcessInfo> {
    const id = target.paths.agent.id;
    const pod = await target.k.json<PodStatus>(['get', 'pod', target.placement.pod]);
    if (!pod) {
      const set = await target.k.json<{ spec?: { replicas?: number } }>(['get', 'statefulset', target.placement.statefulSet]);
      return { id, manager: 'kubernetes', state: set ? (set.spec?.replicas === 0 ? 'stopped' : 'starting') : 'not-registered' };
    }
    return podInfo(id, pod);
  }

  private async awaitReady(target: Target): Promise<ProcessActionResult> {
    const id = target.paths.agent.id;
    const deadline = Date.now() + this.readyTimeoutS * 1000;
    // `kubectl wait` fails at once on a pod that does not exist yet, which is the case right after
    // a scale to 1 or a deleted pod (seen on a real 1.20 cluster): first wait for the StatefulSet
    // to make the new pod.
    while (Date.now() < deadline) {
      const pod = await target.k.json<PodStatus>(['get', 'pod', target.placement.pod]);
      if (pod && !pod.metadata.deletionTimestamp) break;
      await sleep(1000);
    }
    const left = Math.max(1, Math.ceil((deadline - Date.now()) / 1000));
    const wait = await target.k.run(['wait', '--for=condition=Ready', `pod/${target.placement.pod}`, `--timeout=${left}s`], { timeoutMs: (left + 10) * 1000, reject: false });
    const info = await this.read(target);
    if (wait.code === 0 && info.state === 'online') return { id, outcome: 'done', info };
    const logs = await target.k.run(['logs', target.placement.pod, '-c', target.placement.container, '--tail=20'], { reject: false });
    return { id, outcome: 'failed', code: 'EFAILED', message: `${target.placement.pod} is not ready after ${this.readyTimeoutS} s`, info, logTail: logs.stdout.split('\n').filter(Boolean) };
  }

  private async each(agents: AgentPaths[], act: (target: Target, info: ProcessInfo) => Promise<ProcessActionResult>): Promise<ProcessActionResult[]> {
    const results: ProcessActionResult[] = [];
    for (const paths of agents) {
      try {
        const target = await this.target(paths);
        results.push(await act(target, await this.read(target)));
      } catch (error) {
        results.push({ id: paths.agent.id, outcome: 'failed', message: describeError(error), code: error instanceof AnimusError ? error.code : undefined });
      }
    }
    return results;
  }
}

/** A pod as a process: ready = online; running but not ready = errored; pending or in init = starting. */
export function podInfo(id: string, pod: PodStatus): ProcessInfo {
  const runtime = pod.status?.containerStatuses?.find((status) => status.name === 'runtime');
  const ready = pod.status?.conditions?.find((condition) => condition.type === 'Ready')?.status === 'True';
  let state: ProcessState;
  if (pod.metadata.deletionTimestamp) state = 'stopping';
  else if (ready) state = 'online';
  else if (pod.status?.phase === 'Running' && runtime?.state?.running) state = 'errored';
  else if (pod.status?.phase === 'Failed') state = 'errored';
  else state = 'starting';
  const startedAt = runtime?.state?.running?.startedAt;
  return {
    id,
    manager: 'kubernetes',
    state,
    ...(startedAt ? { uptimeMs: Math.max(0, Date.now() - Date.parse(startedAt)) } : {}),
    ...(runtime ? { restarts: runtime.restartCount } : {}),
  };
}
