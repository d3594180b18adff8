import { loadExeca } from '../core/execa.js';
import { AnimusError } from '../core/errors.js';

/**
 * kubectl with the context and namespace of one command. Errors become one line: kubectl's
 * own last line of stderr, with what was asked.
 */
export interface KubectlOptions {
  context?: string;
  namespace: string;
  env?: NodeJS.ProcessEnv;
  /** The kubectl binary (ANIMUS_KUBECTL, else kubectl on the PATH). */
  binary?: string;
}

export interface Kubectl {
  run(args: string[], options?: { input?: string; timeoutMs?: number; reject?: boolean }): Promise<{ code: number; stdout: string; stderr: string }>;
  json<T>(args: string[]): Promise<T | undefined>;
  readonly namespace: string;
  readonly context?: string;
}

export function kubectl(options: KubectlOptions): Kubectl {
  const binary = options.binary ?? options.env?.ANIMUS_KUBECTL ?? 'kubectl';
  const scope = [...(options.context ? ['--context', options.context] : []), '--namespace', options.namespace];
  const run: Kubectl['run'] = async (args, runOptions = {}) => {
    const execa = await loadExeca();
    let result;
    try {
      result = await execa(binary, [...scope, ...args], { reject: false, input: runOptions.input ?? '', timeout: runOptions.timeoutMs ?? 120_000, env: options.env, extendEnv: options.env === undefined });
    } catch (error) {
      throw new AnimusError('ENOPM', `cannot run ${binary}: install kubectl or set ANIMUS_KUBECTL`, { cause: error });
    }
    if ((result as { code?: string }).code === 'ENOENT') {
      throw new AnimusError('ENOPM', `${binary} is not installed: install kubectl or set ANIMUS_KUBECTL`);
    }
    const out = { code: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
    if (out.code !== 0 && runOptions.reject !== false) {
      const last = out.stderr.trim().split('\n').pop() ?? '';
      throw new AnimusError('EPM', `kubectl ${args.slice(0, 2).join(' ')} failed: ${last || `exit ${out.code}`}`);
    }
    return out;
  };
  return {
    run,
    namespace: options.namespace,
    context: options.context,
    async json<T>(args: string[]) {
      const result = await run([...args, '-o', 'json'], { reject: false });
      if (result.code !== 0) {
        if (/NotFound|not found/.test(result.stderr)) return undefined;
        throw new AnimusError('EPM', `kubectl ${args.slice(0, 2).join(' ')} failed: ${result.stderr.trim().split('\n').pop() ?? `exit ${result.code}`}`);
      }
      return JSON.parse(result.stdout) as T;
    },
  };
}

/** The parts of a Pod's status that animus reads. */
export interface PodStatus {
  metadata: { name: string; creationTimestamp?: string; deletionTimestamp?: string };
  status?: {
    phase?: string;
    startTime?: string;
    conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>;
    initContainerStatuses?: ContainerStatus[];
    containerStatuses?: ContainerStatus[];
  };
}

export interface ContainerStatus {
  name: string;
  ready: boolean;
  restartCount: number;
  state?: { running?: { startedAt?: string }; waiting?: { reason?: string; message?: string }; terminated?: { exitCode?: number; reason?: string } };
}
