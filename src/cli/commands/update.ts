import type { Command } from 'commander';
import { EXIT, describeError, isAnimusError } from '../../core/errors.js';
import { EXAMPLE_ID, examples, type Action } from '../program.js';

/*
 * `animus update` and `animus rollback`. JSON shapes (stable):
 *   update, one agent:  UpdateResult (src/update/update.ts):
 *       { id, outcome: 'updated'|'current', from, to, ref, branch, subject, restarted, state, snapshot }
 *   update, several:    { updated: UpdateResult[], failed: [{ id, code, message, detail? }], skipped: string[], pinned: [...] }
 *       (skipped: not tried because an earlier agent failed and --keep-going was not given)
 *       pinned: [{ id, message }]: on a detached HEAD without --ref, not updated (the others go on)
 *   a failed update exits 1 (EFAILED); its error detail says { id, from, to, reason, rolledBack, state, logTail? }
 *   rollback:           RollbackResult (src/update/rollback.ts):
 *       { id, from, to, branch, undid, withData, restoredData, keptDatabase, restarted, state }
 */
export function registerUpdateCommands(program: Command, action: Action): void {
  examples(
    program
      .command('update [ids...]')
      .description("fetch each agent's runtime, move it to the new commit, restart it and check it stays up; roll back by itself if not")
      .option('--all', 'every agent in the home, one at a time (or --parallel N)')
      .option('--ref <ref>', 'branch, tag or commit to move to (default: fast-forward to the upstream of the branch checked out)')
      .option('--parallel <n>', 'with several agents: how many update at once (default 1)')
      .option('--keep-going', 'with several agents: carry on after a failed update (default: stop at the first)')
      .option('--grace <seconds>', 'how long a restarted agent must stay up to pass (default 3)')
      .action(
        action(async (ctx, ids: string[], raw: { all?: boolean; ref?: string; parallel?: string; keepGoing?: boolean; grace?: string }) => {
          const { AnimusError } = await import('../../core/errors.js');
          const { parseAgentId } = await import('../../core/agent-id.js');
          const { parsePositiveInt } = await import('./agent-arg.js');
          const { updateAgent } = await import('../../update/update.js');
          const home = await ctx.home();
          if (raw.all && ids.length > 0) throw new AnimusError('EUSAGE', 'pass agent ids or --all, not both');
          let agents: string[];
          if (raw.all) {
            const { scanAgentFolders } = await import('../../instances/registry.js');
            agents = (await scanAgentFolders(home)).flatMap((f) => (f.agent ? [f.agent.id] : []));
            if (agents.length === 0) throw new AnimusError('ENOAGENT', `no agents in ${home}: nothing to update`);
          } else {
            if (ids.length === 0) throw new AnimusError('EUSAGE', 'which agents? pass their ids or --all');
            agents = [...new Set(ids.map((id) => parseAgentId(id).id))];
          }
          const parallel = parsePositiveInt(raw.parallel, '--parallel', 1, 64);
          const graceMs = raw.grace === undefined ? undefined : parseGrace(raw.grace, AnimusError);
          const progress = ctx.out.progress(agents.length === 1 ? `updating ${agents[0]}` : `updating ${agents.length} agents`);
          // With several agents, one on a detached HEAD (no branch to follow) is told what to
          // do and the others go on: it is not a failure that stops the fleet.
          const pinned: Array<{ id: string; message: string }> = [];
          const outcomes = await runStoppable(agents, parallel, raw.keepGoing === true, (id) =>
            updateAgent({ home, id, ref: raw.ref, graceMs, env: ctx.env, signal: ctx.signal, onStep: agents.length === 1 ? (s) => progress.update(s) : undefined })
              .catch((error: unknown) => {
                if (agents.length === 1 || !isAnimusError(error) || error.detail?.pinned !== true) throw error;
                pinned.push({ id, message: error.message });
                return undefined;
              })
              .finally(() => {
                if (agents.length > 1) progress.update(`updating ${agents.length} agents (${id} done)`);
              }),
          );
          const tried = outcomes.flatMap((o, i) => (o && !(o.ok && o.value === undefined) ? [{ o: o as Outcome<import('../../update/update.js').UpdateResult>, id: agents[i]! }] : []));
          const skipped = agents.filter((_, i) => !outcomes[i]);
          const anyFailed = tried.some((t) => !t.o.ok);
          if (anyFailed) progress.fail();
          else progress.done();
          // One agent alone throws its error; with several, each failure is its own line.
          if (agents.length === 1 && tried[0] && !tried[0].o.ok) throw tried[0].o.error;
          const updated = tried.flatMap((t) => (t.o.ok ? [t.o.value] : []));
          const failed = tried.flatMap((t) => (t.o.ok ? [] : [failure(t.id, t.o.error)]));
          for (const f of failed) ctx.out.error(f.message);
          const first = tried.find((t) => !t.o.ok);
          if (first && !first.o.ok) ctx.setExitCode(isAnimusError(first.o.error) ? first.o.error.exitCode : EXIT.internal);
          for (const p of pinned) ctx.out.warn(p.message);
          if (skipped.length > 0) ctx.out.warn(`not tried after the failure: ${skipped.join(', ')} (--keep-going carries on)`);
          ctx.out.result(agents.length === 1 ? updated[0] : { updated, failed, skipped, pinned }, () =>
            updated.map((u) =>
              u.outcome === 'current'
                ? `${ctx.out.style.green('✓')} ${u.id} already at ${u.ref} (${u.to.slice(0, 12)})`
                : `${ctx.out.style.green('✓')} ${u.id} ${u.from.slice(0, 12)} → ${u.to.slice(0, 12)} ${u.subject ? `"${u.subject}" ` : ''}${u.restarted ? `restarted, ${u.state ?? 'online'}` : 'not running: code updated, left stopped'}`,
            ),
          );
          if (agents.length > 1) {
            // The summary comes last, under the lines it counts; current agents are not "updated".
            const moved = updated.filter((u) => u.outcome === 'updated').length;
            const parts = [`updated ${moved}`, `already current ${updated.length - moved}`, ...(pinned.length ? [`pinned ${pinned.length}`] : []), `failed ${failed.length}`, ...(skipped.length ? [`not tried ${skipped.length}`] : [])];
            ctx.out.info(`${parts.join(', ')} (of ${agents.length} agents)`);
          }
        }),
      ),
    [`animus update ${EXAMPLE_ID}`, 'animus update --all --parallel 4 --keep-going', `animus update ${EXAMPLE_ID} --ref v1.3.0`],
  );

  examples(
    program
      .command('rollback <id>')
      .description('back to the runtime commit before the last update (and, with --with-data, the database snapshot taken just before it)')
      .option('--with-data', "also restore the pre-update database snapshot (stops the agent first; the current database is kept in the agent's updates/)")
      .option('--grace <seconds>', 'how long the restarted agent must stay up to pass (default 3)')
      .action(
        action(async (ctx, id: string, raw: { withData?: boolean; grace?: string }) => {
          const { AnimusError } = await import('../../core/errors.js');
          const { parseAgentId } = await import('../../core/agent-id.js');
          const { rollbackAgent } = await import('../../update/rollback.js');
          const agent = parseAgentId(id);
          const graceMs = raw.grace === undefined ? undefined : parseGrace(raw.grace, AnimusError);
          if (raw.withData) {
            const { confirm } = await import('./prompts.js');
            await confirm(ctx, `Replace ${agent.id}'s database with its pre-update snapshot (messages since then leave the live database)?`, '--yes');
          }
          const progress = ctx.out.progress(`rolling back ${agent.id}`);
          try {
            const result = await rollbackAgent({ home: await ctx.home(), id: agent.id, withData: raw.withData === true, graceMs, env: ctx.env, onStep: (s) => progress.update(s) });
            progress.done();
            ctx.out.result(result, () => [
              `${ctx.out.style.green('✓')} ${result.id} ${result.from.slice(0, 12)} → ${result.to.slice(0, 12)} (undid the update of ${result.undid})${result.restarted ? `, restarted, ${result.state ?? 'online'}` : ', not running'}`,
              ...(result.withData ? [`  database restored from ${result.restoredData}`, ...(result.keptDatabase ? [`  the replaced database is kept as ${result.keptDatabase}`] : [])] : []),
            ]);
          } catch (error) {
            progress.fail();
            throw error;
          }
        }),
      ),
    [`animus rollback ${EXAMPLE_ID}`, `animus rollback ${EXAMPLE_ID} --with-data --yes`],
  );
}

function parseGrace(raw: string, Err: typeof import('../../core/errors.js').AnimusError): number {
  const seconds = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(seconds) || seconds < 0.5 || seconds > 600) {
    throw new Err('EUSAGE', `--grace "${raw}" is not valid: expected seconds from 0.5 to 600`);
  }
  return Math.round(seconds * 1000);
}

function failure(id: string, error: unknown): { id: string; code: string; message: string; detail?: Record<string, unknown> } {
  const detail = isAnimusError(error) ? error.detail : undefined;
  return { id, code: isAnimusError(error) ? error.code : 'EINTERNAL', message: describeError(error), ...(detail ? { detail } : {}) };
}

type Outcome<T> = import('../../core/pool.js').Outcome<T>;

/**
 * Like runPool, but once an item fails no new item starts (unless keepGoing); the
 * ones already running finish. Items never started are undefined.
 */
async function runStoppable<T>(items: readonly string[], limit: number, keepGoing: boolean, work: (item: string) => Promise<T>): Promise<Array<Outcome<T> | undefined>> {
  const outcomes: Array<Outcome<T> | undefined> = new Array(items.length).fill(undefined);
  let next = 0;
  let stop = false;
  const worker = async () => {
    while (!stop && next < items.length) {
      const index = next++;
      try {
        outcomes[index] = { ok: true, value: await work(items[index]!) };
      } catch (error) {
        outcomes[index] = { ok: false, error };
        if (!keepGoing) stop = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return outcomes;
}
