import type { Command } from 'commander';
import { AnimusError } from '../../core/errors.js';
import type { CliContext } from '../context.js';
import { EXAMPLE_ID, examples, type Action } from '../program.js';

/*
 * `animus approvals list|approve|deny --agent <id>`: the tool calls an agent waits to
 * have approved under `letta.approvals = hold`. A decision is written into the agent's
 * database under its operation lock, and the runtime is woken through runtime.sock to
 * send it to Letta. JSON shapes are documented in src/store/approvals.ts.
 */
export function registerApprovalCommands(program: Command, action: Action): void {
  const approvals = program.command('approvals').description('tool calls an agent waits to have approved (letta.approvals = hold): list, approve, deny');

  examples(
    approvals
      .command('list [agent]')
      .description('the tool calls waiting for a decision, with their arguments')
      .option('--agent <id>', 'the agent (or pass it as the first argument)')
      .action(
        action(async (ctx, agentArg: string | undefined, raw: { agent?: string }) => {
          const { readAgentDb } = await import('../agent-db.js');
          const { listApprovals } = await import('../../store/approvals.js');
          const result = await readAgentDb(ctx, raw.agent, agentArg, 'animus approvals list --agent <id>', (db, agent) => listApprovals(db, agent));
          ctx.out.result(result, () => {
            if (result.approvals.length === 0) return `no tool approval is waiting on ${result.agent}`;
            return ctx.out.table(result.approvals, [
              { header: 'REQUEST', value: (a) => String(a.request), align: 'right' },
              { header: 'ITEM', value: (a) => String(a.item ?? ''), align: 'right' },
              { header: 'SINCE', value: (a) => a.since ?? '' },
              { header: 'TOOL CALLS', value: (a) => a.tools.map((t) => `${t.name}(${t.arguments})`).join(', ') },
              { header: 'DECISION', value: (a) => (a.decision ? `${a.decision.approve ? 'approve' : 'deny'} (being sent)` : ctx.out.style.yellow('waiting')) },
            ]);
          });
        }),
      ),
    [`animus approvals list ${EXAMPLE_ID}`, `animus approvals list --agent ${EXAMPLE_ID} --json`],
  );

  for (const [name, approve] of [
    ['approve', true],
    ['deny', false],
  ] as const) {
    examples(
      approvals
        .command(`${name} [agent]`)
        .description(approve ? 'let the agent run the tool call it waits on (it runs with whatever arguments the model chose)' : 'refuse the tool call the agent waits on; the agent is told why and goes on')
        .option('--agent <id>', 'the agent (or pass it as the first argument)')
        .option('--reason <text>', 'what the agent is told')
        .option('--request <n>', 'which held request, when several wait (see `approvals list`)')
        .action(
          action(async (ctx, agentArg: string | undefined, raw: { agent?: string; reason?: string; request?: string }) => {
            const result = await decide(ctx, agentArg, raw, approve);
            ctx.out.result(result, () => {
              const tools = result.tools.map((t) => t.name).join(', ') || 'the tool call';
              ctx.out.success(`${approve ? 'approved' : 'denied'} ${tools} for ${result.agent}${result.runtimeWoken ? '' : ' (the runtime is not running: it answers Letta when it starts)'}`);
              return undefined;
            });
          }),
        ),
      [`animus approvals ${name} --agent ${EXAMPLE_ID}`, `animus approvals ${name} --agent ${EXAMPLE_ID} --reason "${approve ? 'ok, once' : 'not this one'}"`],
    );
  }
}

async function decide(ctx: CliContext, agentArg: string | undefined, raw: { agent?: string; reason?: string; request?: string }, approve: boolean) {
  const { agentOf } = await import('../agent-db.js');
  const { requireAgent } = await import('../../instances/registry.js');
  const { withAgentLock } = await import('../../instances/operation-lock.js');
  const { openQueueDatabase } = await import('../../store/queue-admin.js');
  const { decideApproval } = await import('../../store/approvals.js');
  const { pokeRuntime } = await import('../../runtime/wake-socket.js');
  const usage = `animus approvals ${approve ? 'approve' : 'deny'} --agent <id>`;
  const request = raw.request === undefined ? undefined : Number(raw.request);
  if (request !== undefined && (!Number.isInteger(request) || request < 1)) throw new AnimusError('EUSAGE', `--request "${raw.request}" is not a request number: \`animus approvals list\` shows them`);
  const paths = await requireAgent(await ctx.home(), agentOf(raw.agent, agentArg, usage));
  const decided = await withAgentLock(paths, { command: `approvals ${approve ? 'approve' : 'deny'}`, signal: ctx.signal }, async () => {
    const { db } = openQueueDatabase(paths.db, 'write');
    try {
      return decideApproval(db, paths.agent.id, { approve, reason: raw.reason, request });
    } finally {
      db.close();
    }
  });
  const runtimeWoken = await pokeRuntime(paths.dir);
  return { agent: paths.agent.id, ...decided, runtimeWoken };
}
