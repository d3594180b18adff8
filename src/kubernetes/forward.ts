import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseAgentId } from '../core/agent-id.js';
import { loadExeca } from '../core/execa.js';

/**
 * `animus send|queue|users|settings|backup` for an agent pushed to a cluster run inside its pod:
 * the same command line, through `kubectl exec` into the runtime container (the image has
 * the CLI and the pod's ANIMUS_HOME). Decided before commander parses anything, from the
 * agent's local folder: a kubernetes.json there means the agent lives in the cluster.
 */
// `send` too: run here it would queue the message in the stopped local copy's database, where
// no runtime ever reads it (and `--wait` would wait out its timeout).
export const FORWARDED_COMMANDS = new Set(['send', 'queue', 'users', 'settings', 'backup']);

const AGENT_LIKE = /^(agent-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface Forward {
  agentDir: string;
  /** The arguments to give the CLI in the pod (without --home, which means this machine's home). */
  args: string[];
}

/** The global flags that take a value (everything else before the command is a switch). */
const VALUE_FLAGS = new Set(['--home']);

/** The forward for an argv (without node and script), or undefined when it runs here. */
export function findForward(argv: readonly string[], home: string | undefined): Forward | undefined {
  if (!home) return undefined;
  let i = 0;
  const args: string[] = [];
  while (i < argv.length && argv[i]!.startsWith('-')) {
    if (VALUE_FLAGS.has(argv[i]!)) i += 2;
    else if (argv[i]!.startsWith('--home=')) i += 1;
    else args.push(argv[i++]!);
  }
  const command = argv[i];
  if (command === undefined || !FORWARDED_COMMANDS.has(command)) return undefined;
  const rest = argv.slice(i);
  const flagAt = rest.indexOf('--agent');
  const raw = flagAt >= 0 ? rest[flagAt + 1] : rest.slice(1).find((arg) => AGENT_LIKE.test(arg)) ?? rest.find((arg) => AGENT_LIKE.test(arg));
  if (!raw || !AGENT_LIKE.test(raw)) return undefined;
  const agentDir = join(home, parseAgentId(raw).id);
  if (!existsSync(join(agentDir, 'kubernetes.json'))) return undefined;
  return { agentDir, args: [...args, ...rest] };
}

/** Runs the forwarded command in the pod with this terminal's stdio; resolves with its exit code. */
export async function runForward(forward: Forward, env: NodeJS.ProcessEnv): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const placement = JSON.parse(await readFile(join(forward.agentDir, 'kubernetes.json'), 'utf8')) as import('./placement.js').Placement;
  const execa = await loadExeca();
  const kubectlArgs = [
    ...(placement.context ? ['--context', placement.context] : []),
    '--namespace',
    placement.namespace,
    'exec',
    ...(process.stdin.isTTY ? ['-it'] : ['-i']),
    placement.pod,
    '-c',
    placement.container,
    '--',
    'animus',
    ...forward.args,
  ];
  const result = await execa(env.ANIMUS_KUBECTL ?? 'kubectl', kubectlArgs, { stdio: 'inherit', reject: false, env });
  if ((result as { code?: string }).code === 'ENOENT') {
    process.stderr.write('animus: this agent runs on Kubernetes and kubectl is not installed: install kubectl or set ANIMUS_KUBECTL\n');
    return 6;
  }
  return result.exitCode ?? 1;
}
