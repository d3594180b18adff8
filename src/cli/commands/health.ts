import type { Command } from 'commander';
import { AnimusError, EXIT, isAnimusError, describeError } from '../../core/errors.js';
import type { HealthReport } from '../../health/types.js';
import type { ManagerOpener } from '../../health/process-probe.js';
import type { CliContext } from '../context.js';
import { EXAMPLE_ID, examples, type Action } from '../program.js';

interface HealthFlags {
  watch?: string | boolean;
  process?: boolean;
  cache?: boolean;
  offline?: boolean;
  maxPendingAge?: string;
}

export function registerHealthCommands(program: Command, action: Action): void {
  examples(
    program
      .command('health [ids...]')
      .description('check every agent (or the given ones): permissions, .env, settings, database, schema, clone, logs, process, Letta, queue, last reply. Exit 0 all healthy, 1 any unhealthy, 2 health could not run')
      .option('--watch [seconds]', 're-check every N seconds (default 10) until Ctrl-C; with --json, one compact document per line')
      .option('--no-process', 'do not ask the process managers (the process check reports unknown)')
      .option('--offline', 'do not call Letta (the letta check shows only what the runtime recorded)')
      .option('--no-cache', 'read every file and open every database, even those unchanged since the last health run')
      .option('--max-pending-age <seconds>', 'a pending queue item older than this fails the queue check', '600')
      .action(
        action(async (ctx, ids: string[], flags: HealthFlags) => {
          const options = normalizeHealthFlags(flags);
          // Loaded side by side: each is a chain of file reads.
          const [{ runHealth }, openManager] = await Promise.all([import('../../health/run-health.js'), flags.process === false ? undefined : loadManagerOpener(ctx.env)]);
          const check = async () => {
            try {
              return await runHealth({ home: await ctx.home(), ids, thresholds: { maxPendingAgeS: options.maxPendingAgeS }, openManager, cache: flags.cache !== false, offline: flags.offline === true });
            } catch (error) {
              throw cannotRun(error);
            }
          };
          if (options.watchS === undefined) {
            const report = await ctx.out.during('checking agents', check);
            ctx.out.result(report, () => renderReport(ctx, report));
            if (!report.healthy) ctx.setExitCode(EXIT.failure);
            return;
          }
          await watch(ctx, options.watchS, check);
        }),
      ),
    ['animus health', `animus health ${EXAMPLE_ID}`, 'animus health --json | jq ".agents[] | select(.healthy | not) | .id"', 'animus health --watch 30'],
  );
}

function normalizeHealthFlags(flags: HealthFlags): { watchS?: number; maxPendingAgeS: number } {
  const maxPendingAgeS = Number(flags.maxPendingAge ?? 600);
  if (!Number.isFinite(maxPendingAgeS) || maxPendingAgeS <= 0) {
    throw new AnimusError('EUSAGE', `--max-pending-age "${flags.maxPendingAge}" is not a positive number of seconds`);
  }
  if (flags.watch === undefined || flags.watch === false) return { maxPendingAgeS };
  const watchS = flags.watch === true ? 10 : Number(flags.watch);
  if (!Number.isFinite(watchS) || watchS < 1 || watchS > 86400) throw new AnimusError('EUSAGE', `--watch "${flags.watch}" must be a number of seconds from 1 to 86400`);
  return { watchS, maxPendingAgeS };
}

/** Health that cannot run exits 2 whatever the cause, so scripts tell it from "unhealthy". */
function cannotRun(error: unknown): AnimusError {
  // What does not exist (an unknown agent, no home) keeps the code every command gives it.
  if (isAnimusError(error) && error.exitCode === EXIT.notFound) return error;
  if (isAnimusError(error)) return new AnimusError(error.code, error.message, { cause: error, exitCode: EXIT.usage, detail: error.detail });
  return new AnimusError('EIO', `health could not run: ${describeError(error)}`, { cause: error, exitCode: EXIT.usage });
}

/** Loaded only when health runs: the managers' modules load PM2 or systemd code on use. */
async function loadManagerOpener(env: NodeJS.ProcessEnv): Promise<ManagerOpener> {
  const { managerOpener } = await import('../../health/process-probe.js');
  return managerOpener(env);
}

async function watch(ctx: CliContext, seconds: number, check: () => Promise<HealthReport>): Promise<void> {
  const tty = process.stdout.isTTY === true && !ctx.globals.json;
  for (;;) {
    const report = await check();
    if (ctx.globals.json) ctx.out.write(`${JSON.stringify(report)}\n`);
    else {
      if (tty) ctx.out.write('\x1b[2J\x1b[H');
      ctx.out.write(`${renderReport(ctx, report).join('\n')}\n${ctx.out.style.dim(`checked ${report.checkedAt}; again in ${seconds}s (Ctrl-C to stop)`)}\n`);
    }
    // The last round decides (setExitCode keeps the first): an agent that recovered during the watch exits 0.
    process.exitCode = report.healthy ? EXIT.ok : EXIT.failure;
    const stopped = await sleep(seconds * 1000, ctx.signal);
    if (stopped) return;
  }
}

/** Resolves true when interrupted: Ctrl-C is how a watch ends, not an error. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(false);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(true);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

const SHORT: Record<string, string> = { folder: 'DIR', env: 'ENV', settings: 'SET', database: 'DB', schema: 'SCH', clone: 'GIT', logs: 'LOG', process: 'PROC', letta: 'LETTA', queue: 'QUEUE', reply: 'REPLY' };

function renderReport(ctx: CliContext, report: HealthReport): string[] {
  const { style } = ctx.out;
  const mark = (status: string | undefined) =>
    status === 'ok' ? style.green('✓') : status === 'fail' ? style.red('✗') : status === 'warn' ? style.yellow('!') : style.dim('?');
  if (report.agents.length === 0) return [`no agents in ${report.home}: deploy one with \`animus deploy <id>\``];
  const lines: string[] = [];
  if (report.agents.length === 1) {
    const agent = report.agents[0]!;
    lines.push(`${agent.healthy ? style.green('healthy') : style.red('unhealthy')}  ${agent.id}`);
    for (const check of agent.checks) lines.push(`  ${mark(check.status)} ${check.name.padEnd(9)} ${check.message}`);
  } else {
    const names = Object.keys(SHORT);
    lines.push(
      ctx.out.table(report.agents, [
        { header: 'AGENT', value: (a) => a.id },
        ...names.map((name) => ({ header: SHORT[name]!, value: (a: HealthReport['agents'][number]) => mark(a.checks.find((c) => c.name === name)?.status) })),
        {
          header: 'PROBLEMS',
          value: (a) =>
            a.checks
              .filter((c) => c.status === 'fail' || c.status === 'warn')
              .map((c) => (c.status === 'fail' ? style.red(`${c.name}: ${c.message}`) : style.yellow(`${c.name}: ${c.message}`)))
              .join('; '),
        },
      ]),
    );
  }
  const unavailable = report.processManagers.filter((m) => !m.available);
  for (const manager of unavailable) lines.push(style.dim(`process state unknown: ${manager.message ?? manager.name}`));
  const { summary } = report;
  lines.push(
    `${summary.healthy}/${summary.agents} healthy${summary.unhealthy ? `, ${style.red(`${summary.unhealthy} unhealthy`)}` : ''}${summary.warnings ? `, ${summary.warnings} with warnings` : ''} (${report.durationMs} ms)`,
  );
  return lines;
}
