import { readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseAgentId } from '../core/agent-id.js';
import { AnimusError } from '../core/errors.js';
import { pathExists, writeFileAtomic } from '../core/fs.js';
import { parseEnv } from '../config/env-file.js';
import { MESSAGE_MODES, type MessageMode } from '../config/settings.js';
import { agentPaths } from '../home/layout.js';
import { containerSettings, replicaProblem } from '../runtime/container.js';
import { POD_HOME, POD_INCOMING } from './manifests.js';

/**
 * The pod's init container (`animus kubernetes prepare <id>`): makes the volume a home
 * (`animus init`), then the agent folder: restored from the archive `animus kubernetes push`
 * copies into `.animus/incoming/` (ANIMUS_AWAIT_PUSH=1: the first start waits for it), or a new
 * agent (ANIMUS_AWAIT_PUSH=0); and each start writes the Secret's .env into the folder (0600),
 * so the Secret is the one source of the agent's secrets and a changed Secret applies at the
 * next pod start.
 */
export interface PrepareOptions {
  id: string;
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  pollMs?: number;
}

export interface PrepareResult {
  id: string;
  home: string;
  steps: string[];
}

export function incomingArchive(id: string): string {
  return join(POD_INCOMING, `${id}.animus-backup`);
}

export async function preparePod(options: PrepareOptions): Promise<PrepareResult> {
  const agent = parseAgentId(options.id);
  const home = options.env.ANIMUS_HOME || POD_HOME;
  const steps: string[] = [];
  const say = (line: string) => {
    steps.push(line);
    process.stderr.write(`animus-prepare: ${line}\n`);
  };
  const container = containerSettings(options.env);
  const replica = container && replicaProblem(container);
  if (replica) {
    say(`nothing to prepare: ${replica}`);
    return { id: agent.id, home, steps };
  }
  const { initHome } = await import('../home/init.js');
  const init = await initHome(home);
  say(init.changes.length > 0 ? `home ${home}: ${init.changes.length} changes` : `home ${home} is in order`);

  const secretPath = options.env.ANIMUS_SECRET_ENV;
  if (!secretPath) throw new AnimusError('EUSAGE', 'ANIMUS_SECRET_ENV is not set: run this inside a pod rendered by `animus kubernetes render`');
  const envText = await readFile(secretPath, 'utf8').catch((error: unknown) => {
    throw new AnimusError('EBADENV', `cannot read the Secret's .env at ${secretPath}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  });
  const paths = agentPaths(home, agent);
  if (!(await pathExists(paths.dir))) {
    if (options.env.ANIMUS_AWAIT_PUSH === '1') {
      const archive = incomingArchive(agent.id);
      say(`waiting for \`animus kubernetes push ${agent.id}\` to copy its archive to ${archive}`);
      while (!(await isFile(archive))) {
        if (options.signal?.aborted) throw new AnimusError('EINTERRUPTED', 'stopped waiting for the pushed archive');
        await sleep(options.pollMs ?? 1000);
      }
      const { restoreAgent } = await import('../backup/restore-backup.js');
      const unavailable = { unavailable: 'the pod runs the runtime itself' };
      const restored = await restoreAgent({ home, id: agent.id, archive, start: false, process: { stop: async () => unavailable, start: async () => unavailable } });
      say(`restored ${agent.id} from the archive of ${restored.createdAt}`);
      await rm(archive, { force: true });
    } else {
      const { deployAgent } = await import('../instances/deploy.js');
      const env = parseEnv(envText, secretPath);
      const mode = (MESSAGE_MODES as readonly string[]).includes(options.env.ANIMUS_MODE ?? '') ? (options.env.ANIMUS_MODE as MessageMode) : 'live';
      await deployAgent({ home, agent, mode, processManager: 'pm2', env });
      say(`deployed a new ${agent.id} (${mode})`);
    }
  }
  const current = await readFile(paths.env, 'utf8').catch(() => undefined);
  if (current !== envText) {
    await writeFileAtomic(paths.env, envText);
    say(`wrote its .env from the Secret`);
  }
  return { id: agent.id, home, steps };
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
