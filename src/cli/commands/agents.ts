import type { Command } from 'commander';
import { EXIT, describeError, isAnimusError } from '../../core/errors.js';
import type { Outcome } from '../../core/pool.js';
import type { CliContext } from '../context.js';
import { EXAMPLE_ID, examples, type Action } from '../program.js';

export function registerAgentCommands(program: Command, action: Action): void {
  examples(
    program
      .command('deploy <ids...>')
      .description('create an isolated instance for each Letta agent id: clone, .env, settings.json, animus.db, logs/')
      .option('--endpoint <url>', 'Letta API base URL (https://api.letta.com or https://host/v1)')
      .option('--api-key <key>', 'Letta API key (prefer AGENT_API_KEY in the environment: it stays out of process lists)')
      .option('--name <name>', 'display name')
      .option('--description <text>', 'description')
      .option('--mode <mode>', 'message mode: echo | listen | live', 'live')
      .option('--repo <url|path>', 'runtime repository to clone (default: `animus config get runtimeRepo`, else the home\'s own runtime)')
      .option('--ref <ref>', 'branch, tag or commit to check out')
      .option('--env <KEY=VALUE>', 'extra .env variable (repeatable)', (value: string, all: string[]) => [...all, value], [] as string[])
      .option('--env-file <file>', 'read extra .env variables from a file')
      .option('--process-manager <name>', 'pm2 | systemd (default: `animus config get processManager`, else pm2)')
      .option('--start', 'start each deployed agent and check that it stays up')
      .action(
        action(async (ctx, ids: string[], raw: Record<string, unknown>) => {
          const { normalizeDeployOptions } = await import('./deploy-options.js');
          const { deployAgents } = await import('../../instances/deploy.js');
          const plans = await normalizeDeployOptions(ids, raw, ctx);
          const progress = ctx.out.progress(`deploying ${plans.length === 1 ? plans[0]!.agent.id : `${plans.length} agents`}`);
          const outcomes = await deployAgents(
            plans.map((plan) => ({ ...plan, signal: ctx.signal, onStep: plans.length === 1 ? (step: string) => progress.update(step) : undefined })),
          );
          const { succeeded: deployed, failed } = settle(ctx, outcomes, plans.map((p) => p.agent.id));
          if (failed.length === outcomes.length) progress.fail();
          else progress.done(plans.length === 1 ? undefined : `deployed ${deployed.length} of ${outcomes.length}`);
          // --start, and enabling under systemd: see src/process/fleet.ts activateDeployed.
          const { activateDeployed } = await import('../../process/fleet.js');
          const { renderAction, reportFailures } = await import('./process.js');
          const activation = deployed.length > 0 ? await activateDeployed(await ctx.home(), deployed.map((d) => d.id), { start: raw.start === true, env: ctx.env }) : { warnings: [] };
          activation.warnings.forEach((w) => ctx.out.warn(w));
          const started = activation.started;
          if (started) reportFailures(ctx, started.filter((r) => r.outcome === 'failed'));
          const withStart = <T extends { id: string }>(d: T) => (started ? { ...d, process: started.find((r) => r.id === d.id) } : d);
          ctx.out.result(plans.length === 1 ? (deployed[0] ? withStart(deployed[0]) : deployed[0]) : { deployed: deployed.map(withStart), failed }, () =>
            deployed.map((d) => `${ctx.out.style.green('✓')} ${d.id}  ${d.mode}  ${d.processManager}  runtime ${d.commit.slice(0, 12)}  ${d.dir}`).concat(
              (started ?? []).filter((r) => r.outcome !== 'failed').map((r) => renderAction(ctx, r, 'started')),
            ),
          );
        }),
      ),
    [
      `AGENT_API_KEY=sk-... animus deploy ${EXAMPLE_ID} --endpoint https://api.letta.com`,
      `animus deploy ${EXAMPLE_ID} --mode echo`,
      `animus deploy ${EXAMPLE_ID} --repo https://github.com/you/animus-runtime.git --ref v1.2.0 --env TELEGRAM_BOT_TOKEN=123:abc`,
    ],
  );

  examples(
    program
      .command('list')
      .alias('ls')
      .description('one row per agent folder in the home; broken folders are listed with what is wrong')
      .action(
        action(async (ctx) => {
          const { listAgents } = await import('../../instances/registry.js');
          const agents = await listAgents(await ctx.home());
          // STATE where the managers can tell cheaply; never a reason for list to fail.
          const { fillStates } = await import('../../process/fleet.js');
          await fillStates(await ctx.home(), agents, ctx.env);
          ctx.out.result(agents, () => {
            if (agents.length === 0) return `no agents in ${ctx.globals.home ?? 'the home'}: deploy one with \`animus deploy <id>\``;
            return ctx.out.table(agents, [
              { header: 'AGENT', value: (a) => a.id },
              { header: 'NAME', value: (a) => a.name ?? '' },
              { header: 'MODE', value: (a) => a.mode ?? '' },
              { header: 'PM', value: (a) => a.processManager ?? '' },
              { header: 'RUNTIME', value: (a) => a.commit?.slice(0, 12) ?? '' },
              { header: 'STATE', value: (a) => a.state ?? '' },
              { header: 'PROBLEMS', value: (a) => (a.problems.length === 0 ? '' : ctx.out.style.red(a.problems.join('; '))) },
            ]);
          });
        }),
      ),
    ['animus list', 'animus list --json | jq -r ".[].id"'],
  );

  examples(
    program
      .command('remove <id>')
      .alias('rm')
      .description('stop an agent and move its folder to the home\'s dated .trash/ (or delete it with --purge)')
      .option('--purge', 'delete the folder instead of moving it to the trash')
      .action(
        action(async (ctx, id: string, raw: { purge?: boolean }) => {
          const { parseAgentId } = await import('../../core/agent-id.js');
          const { removeAgent } = await import('../../instances/remove.js');
          const { confirm } = await import('./prompts.js');
          const agent = parseAgentId(id);
          const home = await ctx.home();
          await confirm(ctx, `${raw.purge ? 'Delete' : 'Remove'} ${agent.id}${raw.purge ? ' and all its data for good' : ''}?`, '--yes');
          const { stopAndUnregister } = await import('../../process/fleet.js');
          const { agentPaths } = await import('../../home/layout.js');
          const result = await ctx.out.during(`stopping ${agent.id}`, () =>
            removeAgent({ home, agent, purge: raw.purge === true, stop: () => stopAndUnregister(agentPaths(home, agent), { home, env: ctx.env }) }),
          );
          ctx.out.result(result, () => (result.trashedTo ? `removed ${agent.id}: moved to ${result.trashedTo}` : `deleted ${agent.id}`));
        }),
      ),
    [`animus remove ${EXAMPLE_ID}`, `animus remove ${EXAMPLE_ID} --purge --yes`],
  );

  examples(
    program
      .command('adopt [ids...]')
      .description('take over agent folders made by hand after the multi-agent guide: report what would change, --apply to do it')
      .option('--apply', 'make the changes (the database\'s rows and the .env\'s values are never changed)')
      .action(
        action(async (ctx, ids: string[], raw: { apply?: boolean }) => {
          const { adoptAgents } = await import('../../instances/adopt.js');
          const { parseAgentId } = await import('../../core/agent-id.js');
          const agents = ids.map(parseAgentId);
          const reports = await adoptAgents({ home: await ctx.home(), agents: agents.length > 0 ? agents : undefined, apply: raw.apply === true, signal: ctx.signal });
          ctx.out.result(reports, () =>
            reports.flatMap((r) => [
              r.error
                ? `${r.id}: ${ctx.out.style.red(`cannot adopt: ${r.error}`)}`
                : `${r.id}: ${r.changes.length === 0 ? 'already managed by animus' : raw.apply ? `${r.changes.length} change(s) made` : `${r.changes.length} change(s) needed`}`,
              ...r.changes.map((c) => `  ${raw.apply ? ctx.out.style.green('✓') : '-'} ${c}`),
              ...r.warnings.map((w) => `  ${ctx.out.style.yellow('!')} ${w}`),
            ]).concat(!raw.apply && reports.some((r) => r.changes.length > 0) ? ['', 'Run again with --apply to make these changes.'] : []),
          );
          const failed = reports.find((r) => r.error);
          if (failed) ctx.setExitCode(failed.exitCode ?? EXIT.failure);
        }),
      ),
    ['animus adopt', `animus adopt ${EXAMPLE_ID} --apply`],
  );
}

/**
 * Several agents in one command: each failure is printed as its own error line and the
 * first one's exit code is the command's; one agent alone just throws its error.
 */
export function settle<T>(ctx: CliContext, outcomes: Outcome<T>[], ids: string[]): { succeeded: T[]; failed: Array<{ id: string; code: string; message: string }> } {
  if (outcomes.length === 1 && !outcomes[0]!.ok) throw outcomes[0]!.error;
  const failed: Array<{ id: string; code: string; message: string }> = [];
  outcomes.forEach((outcome, i) => {
    if (outcome.ok) return;
    const error = outcome.error;
    const code = isAnimusError(error) ? error.code : 'EINTERNAL';
    failed.push({ id: ids[i]!, code, message: describeError(error) });
    ctx.out.error(describeError(error));
    ctx.setExitCode(isAnimusError(error) ? error.exitCode : EXIT.internal);
  });
  return { succeeded: outcomes.flatMap((o) => (o.ok ? [o.value] : [])), failed };
}
