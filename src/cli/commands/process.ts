import type { Command } from 'commander';
import { AnimusError, EXIT, type ErrorCode } from '../../core/errors.js';
import type { ProcessActionResult } from '../../process/types.js';
import type { CliContext } from '../context.js';
import { EXAMPLE_ID, examples, type Action } from '../program.js';

const VERBS = {
  start: { description: 'start agents under their process manager and check that they stay up', doing: 'starting', done: 'started', already: 'already running' },
  stop: { description: 'stop agents (gracefully: SIGTERM, then SIGKILL after 15 s)', doing: 'stopping', done: 'stopped', already: 'already stopped' },
  restart: { description: 'restart agents (a changed .env or settings.json applies) and check that they stay up', doing: 'restarting', done: 'restarted', already: '' },
} as const;

export function registerProcessCommands(program: Command, action: Action): void {
  for (const verb of ['start', 'stop', 'restart'] as const) {
    examples(
      program
        .command(`${verb} [ids...]`)
        .description(VERBS[verb].description)
        .option('--all', 'every agent in the home')
        .action(
          action(async (ctx, ids: string[], raw: { all?: boolean }) => {
            const { resolveTargets, runFleetVerb } = await import('../../process/fleet.js');
            const home = await ctx.home();
            const agents = await resolveTargets(home, ids, raw.all === true);
            if (agents.length === 0) {
              ctx.out.result([], () => `no agents in ${home}: deploy one with \`animus deploy <id>\``);
              return;
            }
            const progress = ctx.out.progress(`${VERBS[verb].doing} ${agents.length === 1 ? agents[0]!.agent.id : `${agents.length} agents`}`);
            const results = await runFleetVerb(verb, agents, { home, env: ctx.env, command: `${ctx.command}${raw.all ? ' --all' : ''}` });
            const failures = results.filter((r) => r.outcome === 'failed');
            if (failures.length === results.length) progress.fail();
            else progress.done(results.length === 1 ? undefined : `${VERBS[verb].done} ${results.filter((r) => r.outcome === 'done').length}, unchanged ${results.filter((r) => r.outcome === 'already').length}, failed ${failures.length}`);
            reportFailures(ctx, failures);
            ctx.out.result(results, () => results.filter((r) => r.outcome !== 'failed').map((r) => renderAction(ctx, r, VERBS[verb].done)));
          }),
        ),
      [`animus ${verb} ${EXAMPLE_ID}`, `animus ${verb} --all`, ...(verb === 'start' ? [`animus start --all --json | jq -r '.[] | select(.outcome=="failed") | .id'`] : [])],
    );
  }

  examples(
    program
      .command('logs <id>')
      .description("an agent's log (its logs/ files, or the journal under systemd with log_target journal)")
      .option('-n, --lines <n>', 'how many of the last lines to show', '50')
      .option('-f, --follow', 'keep printing new lines until Ctrl-C')
      .action(
        action(async (ctx, id: string, raw: { lines: string; follow?: boolean }) => {
          const lines = Number(raw.lines);
          if (!Number.isInteger(lines) || lines < 0) throw new AnimusError('EUSAGE', `invalid value "${raw.lines}" for --lines: expected a whole number, 0 or more`);
          if (raw.follow && ctx.out.json) throw new AnimusError('EUSAGE', '--follow cannot be combined with --json: drop one of them');
          const { readAgentLogs, followAgentLogs } = await import('../../process/logs.js');
          const home = await ctx.home();
          const logs = await readAgentLogs(home, id, lines, ctx.env);
          ctx.out.result(logs, () =>
            logs.sources.flatMap((source) => (logs.sources.length > 1 && source.lines.length > 0 ? [`==> ${source.name} <==`, ...source.lines] : source.lines)),
          );
          if (raw.follow) await followAgentLogs(home, logs, (text) => ctx.out.write(text), ctx.signal, ctx.env);
        }),
      ),
    [`animus logs ${EXAMPLE_ID}`, `animus logs ${EXAMPLE_ID} -n 200`, `animus logs ${EXAMPLE_ID} -f`],
  );

  examples(
    program
      .command('startup')
      .description('bring the PM2 fleet back after a reboot: saves the process list and hooks PM2 into the init system (prints the one command that needs root)')
      .action(
        action(async (ctx) => {
          const { setupStartup } = await import('../../process/startup.js');
          const home = await ctx.home();
          const result = await ctx.out.during('saving the PM2 process list', () => setupStartup({ home, env: ctx.env }));
          ctx.out.result(result, () => [
            `${ctx.out.style.green('✓')} saved PM2's process list (${result.saved} animus agent(s)) to ${result.dumpFile}`,
            ...(result.installed ? [`${ctx.out.style.green('✓')} PM2 starts at boot (${result.platform})`] : []),
            ...(result.command ? ['', 'To start PM2 at boot, run this once as root:', `  ${result.command}`] : []),
            ...(result.note ? ['', result.note] : []),
            '',
            'From now on animus start, stop, restart and remove save the list again, so it stays current.',
          ]);
        }),
      ),
    ['animus startup', 'sudo env PATH=$PATH animus startup'],
  );
}

export function renderAction(ctx: CliContext, result: ProcessActionResult, done: string): string {
  const info = result.info;
  if (result.outcome === 'already') return `${ctx.out.style.dim('•')} ${result.id}: ${result.message ?? 'unchanged'}`;
  const detail = info?.pid ? ` (pid ${info.pid})` : '';
  return `${ctx.out.style.green('✓')} ${result.id} ${done}${detail}`;
}

/** Each failure: its one line on stderr, the log's tail under it; the first failure's code is the exit code. */
export function reportFailures(ctx: CliContext, failures: ProcessActionResult[]): void {
  for (const failure of failures) {
    ctx.out.error(failure.message ?? `${failure.id} failed`);
    if (failure.logTail && failure.logTail.length > 0 && !ctx.out.json) {
      ctx.out.info(`  last lines of ${failure.id}'s log:`);
      for (const line of failure.logTail) ctx.out.info(`    ${line}`);
    }
  }
  if (failures.length > 0) ctx.setExitCode(exitCodeOf(failures[0]!.code));
}

function exitCodeOf(code: string | undefined): number {
  if (!code || code === 'EINTERNAL') return code ? EXIT.internal : EXIT.failure;
  return new AnimusError(code as ErrorCode, '').exitCode;
}
