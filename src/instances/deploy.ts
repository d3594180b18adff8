import { chmod, copyFile, mkdtemp, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { lettaAgentIdProblem, type AgentId } from '../core/agent-id.js';
import { AnimusError } from '../core/errors.js';
import { DIR_MODE, ensureDir, pathExists, writeFileAtomic } from '../core/fs.js';
import type { EnvMap } from '../config/env-file.js';
import { defaultSettings, serializeSettings, type MessageMode, type ProcessManagerName } from '../config/settings.js';
import { runPool, type Outcome } from '../core/pool.js';
import { cloneRepo } from '../git/repo.js';
import { replicateClone } from '../git/replicate.js';
import { ensureHome, removeAbandonedStaging } from '../home/init.js';
import type { AgentPaths, HomeLayout } from '../home/layout.js';
import { agentPaths, agentPathsIn } from '../home/layout.js';
import { RUNTIME_BRANCH } from '../home/runtime-source.js';
import { openDatabase } from '../store/database.js';
import { SCHEMA_VERSION } from '../store/migrations.js';
import { withAgentLock } from './operation-lock.js';
import { renderEnv } from './render-env.js';

export interface DeployOptions {
  home: string;
  agent: AgentId;
  endpoint?: string;
  apiKey?: string;
  name?: string;
  description?: string;
  mode: MessageMode;
  processManager: ProcessManagerName;
  /** Runtime repository (URL or path); default: the home's own runtime source. */
  repo?: string;
  ref?: string;
  /** Extra .env variables (from --env-file, then --env). */
  env: EnvMap;
  signal?: AbortSignal;
  onStep?: (step: string) => void;
}

export interface DeployResult {
  id: string;
  dir: string;
  repo: string;
  ref: string;
  commit: string;
  mode: MessageMode;
  processManager: ProcessManagerName;
  schemaVersion: number;
}

/**
 * A clone and an empty database made once for a batch of agents that share a runtime
 * repo and ref; each agent gets a replica instead of its own `git clone`.
 */
interface Prepared {
  clone: string;
  commit: string;
  database: string;
}

/**
 * Deploys several agents. Those that share a repository and ref are cloned once into
 * a scratch folder in the home's staging area and replicated (objects hardlinked,
 * the rest copied), and their empty database is made once and copied: a fleet deploy
 * costs file copies, not a git process and a schema migration per agent.
 */
export async function deployAgents(plans: DeployOptions[], concurrency = 8): Promise<Outcome<DeployResult>[]> {
  if (plans.length === 1) return runPool(plans, 1, (plan) => deployAgent(plan));
  const scratch: string[] = [];
  const prepared = new Map<string, Promise<Prepared>>();
  try {
    return await runPool(plans, concurrency, async (plan) => {
      const layout = await ensureHome(plan.home);
      const { repo, ref } = sourceOf(plan, layout);
      const key = `${layout.root}\0${repo}\0${ref}`;
      let template = prepared.get(key);
      if (!template) {
        template = prepareTemplate(layout, repo, ref, plan.signal, scratch);
        prepared.set(key, template);
      }
      return deployAgent(plan, await template);
    });
  } finally {
    await Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true, maxRetries: 3 })));
  }
}

async function prepareTemplate(layout: HomeLayout, repo: string, ref: string, signal: AbortSignal | undefined, scratch: string[]): Promise<Prepared> {
  await removeAbandonedStaging(layout);
  const dir = await mkdtemp(join(layout.stagingDir, `template.${process.pid}.`));
  scratch.push(dir);
  const clone = join(dir, 'runtime');
  const commit = await cloneRepo({ repo, dest: clone, ref, signal });
  const database = join(dir, 'animus.db');
  openDatabase(database, { create: true }).close();
  return { clone, commit, database };
}

function sourceOf(options: DeployOptions, layout: HomeLayout): { repo: string; ref: string } {
  return { repo: options.repo ?? layout.runtimeRepo, ref: options.ref ?? (options.repo ? 'HEAD' : RUNTIME_BRANCH) };
}

/**
 * Assembles a complete agent folder in the home's staging area and renames it into
 * place, so `agent-<uuid>/` either does not exist or is whole. Any failure, Ctrl-C
 * included, removes the staging folder; a SIGKILL leaves it for the next init or
 * deploy to remove (it is named after the dead pid).
 */
export async function deployAgent(options: DeployOptions, prepared?: Prepared): Promise<DeployResult> {
  const step = options.onStep ?? (() => {});
  const target = agentPaths(options.home, options.agent);
  const idProblem = options.mode === 'live' ? lettaAgentIdProblem(options.agent) : undefined;
  if (idProblem) throw new AnimusError('EBADID', idProblem);
  if (await pathExists(target.dir)) {
    throw new AnimusError('EEXISTS', `${options.agent.id} already exists in ${options.home}: nothing was changed; remove it first (animus remove ${options.agent.id}) to redeploy`);
  }
  step('preparing the home');
  const layout = await ensureHome(options.home);
  // The new folder's lock: a second deploy (or a restore) of the same id meanwhile waits or says busy.
  return withAgentLock(target, { command: 'deploy', signal: options.signal }, () => deployLocked(options, layout, target, prepared));
}

async function deployLocked(options: DeployOptions, layout: HomeLayout, target: AgentPaths, prepared?: Prepared): Promise<DeployResult> {
  const step = options.onStep ?? (() => {});
  // A batch (prepared) has cleaned the staging area once for all its agents.
  if (!prepared) await removeAbandonedStaging(layout);
  const { repo, ref } = sourceOf(options, layout);

  const staging = await mkdtemp(join(layout.stagingDir, `${options.agent.uuid}.${process.pid}.`));
  try {
    await ensureDir(staging, DIR_MODE);
    const paths = agentPathsIn(staging, options.agent);
    step(`cloning ${repo}`);
    options.signal?.throwIfAborted();
    let commit: string;
    if (prepared) {
      await replicateClone(prepared.clone, paths.clone);
      commit = prepared.commit;
    } else {
      commit = await cloneRepo({ repo, dest: paths.clone, ref, signal: options.signal });
    }

    step('writing .env and settings.json');
    options.signal?.throwIfAborted();
    const envText = await renderEnv({ AGENT_ID: options.agent.id, AGENT_ENDPOINT: options.endpoint ?? '', AGENT_API_KEY: options.apiKey ?? '' }, options.env);
    await writeFileAtomic(paths.env, envText);
    const settings = defaultSettings({
      agentId: options.agent.id,
      name: options.name,
      description: options.description,
      mode: options.mode,
      processManager: options.processManager,
    });
    await writeFileAtomic(paths.settings, serializeSettings(settings));

    step('creating animus.db');
    options.signal?.throwIfAborted();
    if (prepared) await copyFile(prepared.database, paths.db);
    else openDatabase(paths.db, { create: true }).close();
    await chmod(paths.db, 0o600);
    await ensureDir(paths.logs, DIR_MODE);

    options.signal?.throwIfAborted();
    try {
      await rename(staging, target.dir);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') {
        throw new AnimusError('EEXISTS', `${options.agent.id} was created by another command meanwhile: nothing was changed`);
      }
      throw error;
    }
    return {
      id: options.agent.id,
      dir: target.dir,
      repo,
      ref,
      commit,
      mode: options.mode,
      processManager: options.processManager,
      schemaVersion: SCHEMA_VERSION,
    };
  } catch (error) {
    await rm(staging, { recursive: true, force: true, maxRetries: 3 });
    if (options.signal?.aborted) throw new AnimusError('EINTERRUPTED', `deploy of ${options.agent.id} interrupted: nothing was left behind`, { cause: error });
    throw error;
  }
}
