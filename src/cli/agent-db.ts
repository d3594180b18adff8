import type { CliContext } from './context.js';
import { AnimusError } from '../core/errors.js';

/*
 * An agent's database for one command's operation, shared by the commands that read or
 * write it (queue, users, approvals): found through the one database-path resolver,
 * opened read-only for reads, and for writes migrated first and held under the agent's
 * operation lock.
 */

type Db = import('better-sqlite3').Database;
type Migrated = import('../store/queue-admin.js').Migrated;

/** Opens the agent's database read-only for one operation (never changes the file). */
export async function readAgentDb<T extends object>(ctx: CliContext, flag: string | undefined, positional: string | undefined, usage: string, work: (db: Db, agent: string) => T): Promise<T> {
  return openAgentDb(ctx, flag, positional, 'read', usage, (db, agent) => work(db, agent));
}

/**
 * Opens the agent's database for writing (migrating a Broca-made file first, which
 * is announced on stderr and reported as `migrated`) for one operation.
 */
export async function writeAgentDb<T extends object>(
  ctx: CliContext,
  flag: string | undefined,
  positional: string | undefined,
  usage: string,
  work: (db: Db, agent: string) => T,
): Promise<{ agent: string } & T & { migrated: Migrated | null }> {
  return openAgentDb(ctx, flag, positional, 'write', usage, (db, agent, migrated) => ({ agent, ...work(db, agent), migrated }));
}

async function openAgentDb<R>(
  ctx: CliContext,
  flag: string | undefined,
  positional: string | undefined,
  mode: 'read' | 'write',
  usage: string,
  work: (db: Db, agent: string, migrated: Migrated | null) => R,
): Promise<R> {
  const { openQueueDatabase } = await import('../store/queue-admin.js');
  const { requireAgent } = await import('../instances/registry.js');
  const { agentDbPath } = await import('../instances/db-path.js');
  const paths = await requireAgent(await ctx.home(), agentOf(flag, positional, usage));
  // The database the runtime uses (DB_PATH inside the folder, else animus.db or sanctum.db).
  const dbPath = agentDbPath(paths);
  const run = async () => {
    const { db, migrated } = openQueueDatabase(dbPath, mode);
    try {
      if (migrated) ctx.out.info(`upgraded ${dbPath} from schema ${migrated.from} to ${migrated.to} before writing (additive: Broca can still open it)`);
      return work(db, paths.agent.id, migrated);
    } finally {
      db.close();
    }
  };
  if (mode === 'read') return run();
  const { withAgentLock } = await import('../instances/operation-lock.js');
  return withAgentLock(paths, { command: ctx.command, signal: ctx.signal }, run);
}

/** The agent from `--agent` or the positional argument (given once). */
export function agentOf(flag: string | undefined, positional: string | undefined, usage: string): string {
  if (flag !== undefined && positional !== undefined) {
    throw new AnimusError('EUSAGE', `the agent was given twice (--agent ${flag} and ${positional}): pass it once; usage: ${usage}`);
  }
  const id = flag ?? positional;
  if (id === undefined) throw new AnimusError('EUSAGE', `which agent? pass --agent <id> (or the id as the first argument); usage: ${usage}`);
  return id;
}

