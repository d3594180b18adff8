import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { EXAMPLE_ID, examples, type Action } from '../program.js';
import { AnimusError } from '../../core/errors.js';
import { collect } from './agent-arg.js';
import { agentOf, readAgentDb, writeAgentDb } from '../agent-db.js';

/*
 * `animus queue list|stats|flush|delete|retry`. JSON shapes are documented in
 * src/store/queue-admin.ts; read-only commands open the database read-only, so they
 * never change the file (a Broca-made one included).
 */
export function registerQueueCommands(program: Command, action: Action): void {
  const queue = program.command('queue').description("an agent's message queue: list, stats, flush, delete, retry");

  examples(
    queue
      .command('list [agent]')
      .description('queued items with user, message, status, attempts and time (oldest first; default: pending, processing, failed)')
      .option('--agent <id>', 'the agent (or pass it as the first argument)')
      .option('--status <list>', 'statuses to show, comma-separated or repeated: pending, processing, completed, failed, flushed, all', collect)
      .option('--limit <n>', 'show at most N items (default 100)')
      .action(
        action(async (ctx, agentArg: string | undefined, raw: { agent?: string; status?: string[]; limit?: string }) => {
          const { listQueue, parseStatuses, DEFAULT_LIST_LIMIT } = await import('../../store/queue-admin.js');
          const { parsePositiveInt } = await import('./agent-arg.js');
          const statuses = parseStatuses(raw.status);
          const limit = parsePositiveInt(raw.limit, '--limit', DEFAULT_LIST_LIMIT);
          const list = await readAgentDb(ctx, raw.agent, agentArg, 'animus queue list --agent <id>', (db, agent) => listQueue(db, agent, { statuses, limit }));
          ctx.out.result(list, () => {
            if (list.items.length === 0) return `no ${statuses.join('/')} items in ${list.agent}'s queue`;
            const table = ctx.out.table(list.items, [
              { header: 'ID', value: (i) => String(i.id), align: 'right' },
              { header: 'STATUS', value: (i) => colourStatus(ctx, i.status) },
              { header: 'TRIES', value: (i) => String(i.attempts), align: 'right' },
              { header: 'QUEUED', value: (i) => i.timestamp ?? '' },
              { header: 'USER', value: (i) => userLabel(i.user) },
              { header: 'MESSAGE', value: (i) => oneLine(i.message ?? '', 50) },
              { header: 'LAST ERROR', value: (i) => oneLine(i.lastError ?? '', 40) },
            ]);
            return list.total > list.items.length ? [table, ctx.out.style.dim(`showing ${list.items.length} of ${list.total}: raise --limit to see more`)] : table;
          });
        }),
      ),
    [`animus queue list ${EXAMPLE_ID}`, `animus queue list --agent ${EXAMPLE_ID} --status failed --limit 20`, `animus queue list ${EXAMPLE_ID} --status all --json`],
  );

  examples(
    queue
      .command('stats [agent]')
      .description('counts per status, retries waiting, age of the oldest pending item (every agent when none is given)')
      .option('--agent <id>', 'the agent (or pass it as the first argument)')
      .action(
        action(async (ctx, agentArg: string | undefined, raw: { agent?: string }) => {
          const { queueStats, openQueueDatabase } = await import('../../store/queue-admin.js');
          const { requireAgent, scanAgentFolders } = await import('../../instances/registry.js');
          const { runPool } = await import('../../core/pool.js');
          const { settle } = await import('./agents.js');
          const { parseAgentId } = await import('../../core/agent-id.js');
          const { agentDbPath } = await import('../../instances/db-path.js');
          const home = await ctx.home();
          const one = raw.agent !== undefined || agentArg !== undefined ? agentOf(raw.agent, agentArg, 'animus queue stats [agent]') : undefined;
          const ids = one !== undefined ? [parseAgentId(one).id] : (await scanAgentFolders(home)).flatMap((f) => (f.agent ? [f.agent.id] : []));
          const outcomes = await runPool(ids, 8, async (id) => {
            const paths = await requireAgent(home, id);
            const { db } = openQueueDatabase(agentDbPath(paths), 'read');
            try {
              return queueStats(db, paths.agent.id);
            } finally {
              db.close();
            }
          });
          const { succeeded } = settle(ctx, outcomes, ids);
          const data = one !== undefined ? succeeded[0] : succeeded;
          ctx.out.result(data, () => {
            if (succeeded.length === 0) return one === undefined ? 'no agents in the home' : undefined;
            return ctx.out.table(succeeded, [
              { header: 'AGENT', value: (s) => s.agent },
              { header: 'PENDING', value: (s) => String(s.counts.pending), align: 'right' },
              { header: 'OLDEST', value: (s) => formatAge(s.oldestPending?.ageSeconds), align: 'right' },
              { header: 'RETRYING', value: (s) => String(s.retrying), align: 'right' },
              { header: 'PROCESSING', value: (s) => String(s.counts.processing), align: 'right' },
              { header: 'FAILED', value: (s) => (s.counts.failed > 0 ? ctx.out.style.red(String(s.counts.failed)) : '0'), align: 'right' },
              { header: 'COMPLETED', value: (s) => String(s.counts.completed), align: 'right' },
              { header: 'FLUSHED', value: (s) => String(s.counts.flushed), align: 'right' },
              { header: 'TOTAL', value: (s) => String(s.total), align: 'right' },
            ]);
          });
        }),
      ),
    [`animus queue stats ${EXAMPLE_ID}`, 'animus queue stats --json'],
  );

  examples(
    queue
      .command('flush [agent]')
      .description('mark pending items flushed: kept in the database, never sent to the agent (all of them asks first; --yes to skip)')
      .option('--agent <id>', 'the agent (or pass it as the first argument)')
      .option('--all', 'every pending item (the default without --id)')
      .option('--id <n>', 'only these pending items (repeatable or comma-separated)', collect)
      .action(
        action(async (ctx, agentArg: string | undefined, raw: { agent?: string; all?: boolean; id?: string[] }) => {
          const { flushQueue } = await import('../../store/queue-admin.js');
          const { parseIds } = await import('./agent-arg.js');
          const { parseAgentId } = await import('../../core/agent-id.js');
          const ids = parseIds(raw.id);
          if (ids.length > 0 && raw.all) throw new AnimusError('EUSAGE', 'pass --id N or --all, not both');
          const id = parseAgentId(agentOf(raw.agent, agentArg, 'animus queue flush --agent <id>')).id;
          if (ids.length === 0) {
            const { confirm } = await import('./prompts.js');
            await confirm(ctx, `Flush every pending item of ${id} (they will not be answered)?`, '--yes');
          }
          const result = await writeAgentDb(ctx, raw.agent, agentArg, 'animus queue flush --agent <id>', (db) => flushQueue(db, ids));
          ctx.out.result(result, () => `flushed ${result.flushed} pending item(s) of ${result.agent}`);
        }),
      ),
    [`animus queue flush ${EXAMPLE_ID} --yes`, `animus queue flush --agent ${EXAMPLE_ID} --id 42`],
  );

  examples(
    queue
      .command('delete [agent]')
      .description("delete queue items (their messages stay in the history). --all means Broca's: pending, processing and failed items; completed and flushed ones are kept. Items being processed are skipped unless --force")
      .option('--agent <id>', 'the agent (or pass it as the first argument)')
      .option('--id <n>', 'item id (repeatable or comma-separated)', collect)
      .option('--all', 'every pending, processing and failed item, as Broca (asks first; --yes to skip)')
      .option('--status <list>', 'with --all: these statuses instead (e.g. completed,flushed)', collect)
      .option('--force', 'also delete items the runtime is processing (when it is stopped or stuck)')
      .action(
        action(async (ctx, agentArg: string | undefined, raw: { agent?: string; id?: string[]; all?: boolean; status?: string[]; force?: boolean }) => {
          const { deleteQueueItems, parseStatuses, DEFAULT_DELETE_STATUSES } = await import('../../store/queue-admin.js');
          const { parseIds } = await import('./agent-arg.js');
          const { parseAgentId } = await import('../../core/agent-id.js');
          const ids = parseIds(raw.id);
          if ((ids.length > 0) === (raw.all === true)) throw new AnimusError('EUSAGE', 'pass either --id N or --all: delete needs to know which items');
          if ((raw.status ?? []).length > 0 && !raw.all) throw new AnimusError('EUSAGE', '--status goes with --all: to delete single items pass --id N');
          const statuses = (raw.status ?? []).length > 0 ? parseStatuses(raw.status) : DEFAULT_DELETE_STATUSES;
          const id = parseAgentId(agentOf(raw.agent, agentArg, 'animus queue delete --agent <id> --id N')).id;
          if (raw.all) {
            const { confirm } = await import('./prompts.js');
            await confirm(ctx, `Delete every ${statuses.join('/')} item in ${id}'s queue?`, '--yes');
          }
          const target = raw.all ? { all: true as const, statuses, force: raw.force === true } : { ids, force: raw.force === true };
          const result = await writeAgentDb(ctx, raw.agent, agentArg, 'animus queue delete --agent <id> --id N', (db) => deleteQueueItems(db, target));
          if (result.skipped.length > 0) ctx.out.warn(`left ${result.skipped.length} item(s) the runtime is processing (${result.skipped.join(', ')}); --force deletes them too`);
          ctx.out.result(result, () => `deleted ${result.deleted} item(s) from ${result.agent}'s queue${raw.all ? ` (${statuses.join(', ')}; other statuses kept)` : ''}`);
        }),
      ),
    [`animus queue delete ${EXAMPLE_ID} --id 42`, `animus queue delete --agent ${EXAMPLE_ID} --all --status failed,flushed --yes`],
  );

  examples(
    queue
      .command('retry [agent]')
      .description('send failed (or flushed) items through the queue again, with a fresh attempt count')
      .option('--agent <id>', 'the agent (or pass it as the first argument)')
      .option('--id <n>', 'item id (repeatable or comma-separated)', collect)
      .option('--failed', 'every failed item')
      .action(
        action(async (ctx, agentArg: string | undefined, raw: { agent?: string; id?: string[]; failed?: boolean }) => {
          const { retryQueueItems } = await import('../../store/queue-admin.js');
          const { parseIds } = await import('./agent-arg.js');
          const ids = parseIds(raw.id);
          if ((ids.length > 0) === (raw.failed === true)) throw new AnimusError('EUSAGE', 'pass either --id N or --failed: retry needs to know which items');
          const result = await writeAgentDb(ctx, raw.agent, agentArg, 'animus queue retry --agent <id> --failed', (db) =>
            retryQueueItems(db, raw.failed ? { failed: true } : { ids }),
          );
          ctx.out.result(result, () => `queued ${result.retried} item(s) of ${result.agent} again${result.ids.length > 0 ? ` (${result.ids.join(', ')})` : ''}`);
        }),
      ),
    [`animus queue retry ${EXAMPLE_ID} --failed`, `animus queue retry --agent ${EXAMPLE_ID} --id 42,43`],
  );
}

function userLabel(user: { username: string | null; displayName: string | null; platformUserId: string | null } | null): string {
  if (!user) return '';
  const name = user.displayName ?? '';
  const handle = user.username ? `@${user.username}` : (user.platformUserId ?? '');
  return name && handle ? `${name} (${handle})` : name || handle;
}

function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function colourStatus(ctx: CliContext, status: string): string {
  if (status === 'failed') return ctx.out.style.red(status);
  if (status === 'processing') return ctx.out.style.cyan(status);
  if (status === 'pending') return ctx.out.style.yellow(status);
  return status;
}

export function formatAge(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return '-';
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(seconds / 86_400)}d${Math.floor((seconds % 86_400) / 3600)}h`;
}
