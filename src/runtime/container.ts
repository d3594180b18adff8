import { mkdirSync, rmSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { dirname } from 'node:path';

/**
 * The runtime in a container (ANIMUS_IN_CONTAINER=1, set by the rendered StatefulSet):
 * Kubernetes restarts a container whatever its exit code, so a configuration error must
 * not exit (78 would only become a crash loop). The runtime then stays up "not ready",
 * prints its reasons one per line (what `kubectl logs` shows) and answers the probes on a
 * status socket: readiness fails, liveness holds. When it runs, the same socket answers
 * ready, so the probes ask the runtime itself, not whether a process exists.
 */
export interface RuntimeStatus {
  ready: boolean;
  reasons: string[];
  pid: number;
}

export interface ContainerSettings {
  statusSocket: string;
  podName?: string;
}

export function containerSettings(env: NodeJS.ProcessEnv): ContainerSettings | undefined {
  if (env.ANIMUS_IN_CONTAINER !== '1') return undefined;
  return { statusSocket: env.ANIMUS_STATUS_SOCKET || '/run/animus/status.sock', podName: env.ANIMUS_POD_NAME || undefined };
}

/**
 * A StatefulSet scaled past one gives every extra pod its own empty volume: replica 0 alone
 * may run the agent (one SQLite writer, one Telegram poller per token).
 */
export function replicaProblem(settings: ContainerSettings): string | undefined {
  const match = settings.podName?.match(/^(.*)-(\d+)$/);
  if (!match || match[2] === '0') return undefined;
  return `pod ${settings.podName} is replica ${match[2]} of a single-agent StatefulSet: only replica 0 runs the agent; scale it back with \`kubectl scale statefulset ${match[1]} --replicas=1\``;
}

/** Serves the current status to every connection, one JSON line; replaces a stale socket file. */
export function serveStatus(path: string, current: () => RuntimeStatus): Promise<Server> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  rmSync(path, { force: true });
  const server = createServer((socket) => {
    socket.on('error', () => {});
    socket.end(`${JSON.stringify(current())}\n`);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      server.unref();
      resolve(server);
    });
  });
}

/** Asks the status socket; undefined when nothing answers in time. */
export function queryStatus(path: string, timeoutMs = 3000): Promise<RuntimeStatus | undefined> {
  return new Promise((resolve) => {
    const socket = connect(path);
    let text = '';
    const done = (status: RuntimeStatus | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(status);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
    });
    socket.on('end', () => {
      try {
        done(JSON.parse(text) as RuntimeStatus);
      } catch {
        done(undefined);
      }
    });
    socket.on('error', () => done(undefined));
  });
}

export interface ProbeResult {
  kind: 'ready' | 'live';
  ok: boolean;
  message: string;
  status?: RuntimeStatus;
}

/** `animus kubernetes probe ready|live`: what the pod's probes run. */
export async function probeRuntime(kind: string, env: NodeJS.ProcessEnv): Promise<ProbeResult> {
  if (kind !== 'ready' && kind !== 'live') {
    const { AnimusError } = await import('../core/errors.js');
    throw new AnimusError('EUSAGE', `probe "${kind}" is not one of: ready, live`);
  }
  const path = env.ANIMUS_STATUS_SOCKET || '/run/animus/status.sock';
  const status = await queryStatus(path);
  if (!status) return { kind, ok: false, message: `the runtime does not answer on ${path}` };
  if (kind === 'live') return { kind, ok: true, message: status.ready ? 'running' : `up, not ready: ${status.reasons.join('; ')}`, status };
  return { kind, ok: status.ready, message: status.ready ? 'ready' : `not ready: ${status.reasons.join('; ')}`, status };
}
