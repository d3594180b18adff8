import type { Command } from 'commander';
import { AnimusError, type ErrorCode } from '../../core/errors.js';
import type { StatusWithMetrics } from '../../metrics/status.js';
import type { CliContext } from '../context.js';
import { EXAMPLE_ID, examples, type Action } from '../program.js';

export function registerStatusCommands(program: Command, action: Action): void {
  examples(
    program
      .command('status [id]')
      .description('per agent: state, uptime, reply latency (p50), messages, failures, queue and tokens over the last 24 h; --json carries every metric')
      .option('--wide', 'every column: full id, manager, pid, p95/p99, replies, retries, oldest pending, crash restarts, memory, CPU')
      .action(
        action(async (ctx, id: string | undefined, raw: { wide?: boolean }) => {
          const rows = await readStatus(ctx, id);
          if (id && rows[0]?.problem && rows[0].state === 'unknown') throw new AnimusError((rows[0].code ?? 'EPM') as ErrorCode, rows[0].problem);
          for (const row of rows) {
            if (ctx.out.json) continue;
            if (row.problem) ctx.out.warn(`${row.id}: ${row.problem}`);
            if (row.metricsProblem) ctx.out.warn(`${row.id}: no metrics: ${row.metricsProblem}`);
          }
          const home = await ctx.home();
          const { statusColumns } = await import('../status-table.js');
          ctx.out.result(rows, () => (rows.length === 0 ? `no agents in ${home}: deploy one with \`animus deploy <id>\`` : ctx.out.table(rows, statusColumns(ctx.out, rows, raw.wide === true))));
        }),
      ),
    ['animus status', 'animus status --wide', `animus status ${EXAMPLE_ID}`, `animus status --json | jq -r '.[] | select(.state!="online") | .id'`, `animus status --json | jq '.[] | {id, p95: .metrics.windows."24h".latencyMs.p95}'`],
  );

  examples(
    program
      .command('top')
      .description('the status table, refreshed live at a terminal (like pm2 monit): s/S sort by the next/previous column, r reverse, w wide, q quit')
      .option('--interval <seconds>', 'seconds between refreshes', '2')
      .action(
        action(async (ctx, raw: { interval: string }) => {
          const intervalS = Number(raw.interval);
          if (!Number.isFinite(intervalS) || intervalS < 0.5 || intervalS > 3600) throw new AnimusError('EUSAGE', `invalid value "${raw.interval}" for --interval: expected seconds from 0.5 to 3600`);
          if (ctx.out.json) throw new AnimusError('EUSAGE', '`animus top` draws on a terminal and has no --json: use `animus status --json` (or `animus metrics`) instead');
          if (!process.stdout.isTTY || !process.stdin.isTTY) throw new AnimusError('ENOTTY', '`animus top` needs a terminal: in a script use `animus status` (or `animus status --json`)');
          const { runTop } = await import('../top.js');
          await runTop(ctx, () => readStatus(ctx, undefined), intervalS * 1000);
        }),
      ),
    ['animus top', 'animus top --interval 5'],
  );
}

async function readStatus(ctx: CliContext, id: string | undefined): Promise<StatusWithMetrics[]> {
  const [{ statusWithMetrics }, { withHomeMetricsCache }] = await Promise.all([import('../../metrics/status.js'), import('../../metrics/metrics-cache.js')]);
  const home = await ctx.home();
  return withHomeMetricsCache(home, (cache) => statusWithMetrics(home, id ? [id] : [], ctx.env, cache));
}
