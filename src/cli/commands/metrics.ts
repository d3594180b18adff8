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
          const [{ collectMetrics }, { withHomeMetricsCache }] = await Promise.all([import('../../metrics/collect.js'), import('../../metrics/metrics-cache.js')]);
          const home = await ctx.home();
          const agents = await withHomeMetricsCache(home, (cache) => collectMetrics({ home, ids, env: ctx.env, cache }));
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

  examples(
    program
      .command('serve')
      .description('the web dashboard at / and the Prometheus endpoint at /metrics; bound to 127.0.0.1 unless --host says otherwise')
      .option('--host <address>', 'address to listen on; any address other than 127.0.0.1 and ::1 needs the token from <home>/.animus/serve-token', '127.0.0.1')
      .option('--port <n>', 'port to listen on (0: any free port)', '9464')
      .addHelpText(
        'after',
        `
Bound to 127.0.0.1 (or ::1) only this machine can connect, and reading needs no token. Bound to
any other address, 127.0.0.2 included, every request needs the token made at the first start
(<home>/.animus/serve-token, mode 0600, never printed): as "Authorization: Bearer <token>" (for
Prometheus: authorization.credentials_file) or typed once into the sign-in page. The start,
stop and restart buttons always need a request from the dashboard's own page (same origin and
its CSRF token), and take the agent's operation lock as the CLI does.`,
      )
      .action(
        action(async (ctx, raw: { host: string; port: string }) => {
          const port = Number(raw.port);
          if (!Number.isInteger(port) || port < 0 || port > 65535) throw new AnimusError('EUSAGE', `invalid value "${raw.port}" for --port: expected a port number from 0 to 65535`);
          const host = raw.host.trim() === 'localhost' ? '127.0.0.1' : raw.host.trim();
          if (host === '') throw new AnimusError('EUSAGE', '--host needs an address, e.g. --host 127.0.0.1');
          const { startServer } = await import('../../serve/server.js');
          const server = await startServer({ home: await ctx.home(), host, port, env: ctx.env, onError: (error) => ctx.out.error(`internal error while serving a request: ${(error as Error).stack ?? String(error)}`) });
          ctx.out.result({ url: server.url, metrics: `${server.url}metrics`, tokenRequired: server.tokenRequired, tokenFile: server.tokenFile });
          if (!ctx.out.json) {
            ctx.out.success(`dashboard at ${server.url}, Prometheus metrics at ${server.url}metrics`);
            ctx.out.info(server.tokenRequired ? `every request needs the token in ${server.tokenFile} (bound to ${host}, not loopback)` : 'bound to loopback: no token needed to read; Ctrl-C stops');
          }
          await new Promise<void>((resolve) => {
            if (ctx.signal.aborted) return resolve();
            ctx.signal.addEventListener('abort', () => resolve(), { once: true });
            process.once('SIGTERM', () => resolve());
          });
          await server.close();
        }),
      ),
    ['animus serve', 'animus serve --port 9100', 'animus serve --host 0.0.0.0 --port 9464   # needs the token', "curl -s http://127.0.0.1:9464/metrics | grep animus_agent_up"],
  );
}
