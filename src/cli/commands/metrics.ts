import type { Command } from 'commander';
import { resolve } from 'node:path';
import { AnimusError } from '../../core/errors.js';
import { examples, type Action } from '../program.js';

const TEXTFILE_HELP = `
With node_exporter's textfile collector (node_exporter --collector.textfile.directory=DIR),
write the file atomically from cron or a timer, e.g. every minute:
  * * * * *  animus metrics --out /var/lib/node_exporter/textfile_collector/animus.prom
(--out writes a temporary file beside it and renames it, so node_exporter never reads half a file.)
Or let Prometheus scrape \`animus serve\` at http://127.0.0.1:9464/metrics.`;

export function registerMetricsCommands(program: Command, action: Action): void {
  examples(
    program
      .command('metrics [ids...]')
      .description("every agent's metrics in the Prometheus text format (one family per metric, labels agent and name); --json: the numbers per window")
      .option('--out <file>', 'write to this file atomically (mode 0644) instead of stdout: for node_exporter\'s textfile collector')
      .addHelpText('after', TEXTFILE_HELP)
      .action(
        action(async (ctx, ids: string[], raw: { out?: string }) => {
          if (raw.out !== undefined && raw.out.trim() === '') throw new AnimusError('EUSAGE', '--out needs a file name, e.g. --out /var/lib/node_exporter/textfile_collector/animus.prom');
          const started = performance.now();
          const { collectMetrics } = await import('../../metrics/collect.js');
          const agents = await collectMetrics({ home: await ctx.home(), ids, env: ctx.env });
          if (ctx.out.json && raw.out === undefined) {
            ctx.out.result(agents);
            return;
          }
          const { renderPrometheus } = await import('../../metrics/prometheus.js');
          const text = await renderPrometheus(agents, { durationMs: performance.now() - started });
          if (raw.out === undefined) {
            ctx.out.write(text);
            return;
          }
          const { writeFileAtomic } = await import('../../core/fs.js');
          const file = resolve(raw.out);
          try {
            await writeFileAtomic(file, text, 0o644);
          } catch (error) {
            throw new AnimusError('EIO', `cannot write ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'}): check that its folder exists and is writable`, { cause: error });
          }
          ctx.out.result({ file, agents: agents.length }, () => undefined);
          if (!ctx.out.json) ctx.out.success(`wrote the metrics of ${agents.length} agent(s) to ${file}`);
        }),
      ),
    ['animus metrics', 'animus metrics --out /var/lib/node_exporter/textfile_collector/animus.prom', "animus metrics --json | jq '.[] | {id, p50: .database.windows.\"24h\".latencyMs.p50}'"],
  );
}
