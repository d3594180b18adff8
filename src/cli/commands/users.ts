import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { EXAMPLE_ID, examples, type Action } from '../program.js';

/*
 * `animus users list|get|activate|deactivate`. JSON shapes are documented in
 * src/store/users.ts. A user is named by id (7), username (@alice) or platform id
 * (telegram:12345); the agent by --agent or as the first argument.
 */
export function registerUserCommands(program: Command, action: Action): void {
  const users = program.command('users').description('the people an agent talks to: list, get, activate, deactivate');

  examples(
    users
      .command('list [agent]')
      .description('every user of the agent with status, first profile and message count')
      .option('--agent <id>', 'the agent (or pass it as the first argument)')
      .action(
        action(async (ctx, agentArg: string | undefined, raw: { agent?: string }) => {
          const { readAgentDb } = await import('../agent-db.js');
          const { listUsers } = await import('../../store/users.js');
          const result = await readAgentDb(ctx, raw.agent, agentArg, 'animus users list --agent <id>', (db, agent) => listUsers(db, agent));
          ctx.out.result(result, () => {
            if (result.users.length === 0) return `${result.agent} has no users yet`;
            return ctx.out.table(result.users, [
              { header: 'ID', value: (u) => String(u.id), align: 'right' },
              { header: 'STATUS', value: (u) => status(ctx, u.isActive) },
              { header: 'NAME', value: (u) => u.displayName ?? '' },
              { header: 'USERNAME', value: (u) => (u.username ? `@${u.username}` : '') },
              { header: 'PLATFORM', value: (u) => (u.platform ? `${u.platform}:${u.platformUserId ?? ''}` : '') },
              { header: 'MESSAGES', value: (u) => String(u.messages), align: 'right' },
              { header: 'LAST ACTIVE', value: (u) => u.lastActive ?? '' },
            ]);
          });
        }),
      ),
    [`animus users list ${EXAMPLE_ID}`, `animus users list --agent ${EXAMPLE_ID} --json`],
  );

  examples(
    users
      .command('get <args...>')
      .usage('[agent] <user> [options]')
      .description('one user in full: profiles, Letta identity and block, message and queue counts')
      .option('--agent <id>', 'the agent (or pass it as the first argument)')
      .action(
        action(async (ctx, args: string[], raw: { agent?: string }) => {
          const { splitAgentArgs, expectArgs } = await import('./agent-arg.js');
          const { readAgentDb } = await import('../agent-db.js');
          const { getUser } = await import('../../store/users.js');
          const usage = 'animus users get --agent <id> <user>';
          const { agent, rest } = splitAgentArgs(raw.agent, args, usage);
          const [ref] = expectArgs(rest, ['user'], usage);
          const user = await readAgentDb(ctx, agent, undefined, usage, (db, id) => getUser(db, id, ref!));
          ctx.out.result(user, () => [
            `user ${user.id} of ${user.agent}: ${status(ctx, user.isActive)}`,
            `  created        ${user.createdAt ?? '-'}`,
            `  last active    ${user.lastActive ?? '-'}`,
            `  letta identity ${user.lettaIdentityId ?? '-'}`,
            `  memory block   ${user.lettaBlockId ?? '-'}`,
            `  messages       ${user.messages}`,
            `  queue          ${Object.entries(user.queue).map(([k, v]) => `${k} ${v}`).join(', ')}`,
            ...(user.profiles.length === 0 ? ['  profiles       none'] : ['  profiles:']),
            ...user.profiles.map((p) => `    ${p.platform ?? '?'}:${p.platformUserId ?? '?'}  ${p.username ? `@${p.username}` : ''}  ${p.displayName ?? ''}`.trimEnd()),
          ]);
        }),
      ),
    [`animus users get ${EXAMPLE_ID} 7`, `animus users get --agent ${EXAMPLE_ID} @alice --json`],
  );

  for (const [name, active] of [
    ['activate', true],
    ['deactivate', false],
  ] as const) {
    examples(
      users
        .command(`${name} <args...>`)
        .usage('[agent] <user> [options]')
        .description(active ? 'let the user talk to the agent again' : "stop answering the user (their messages are ignored); Broca's `update <id> inactive`")
        .option('--agent <id>', 'the agent (or pass it as the first argument)')
        .action(
          action(async (ctx, args: string[], raw: { agent?: string }) => {
            const { splitAgentArgs, expectArgs } = await import('./agent-arg.js');
            const { writeAgentDb } = await import('../agent-db.js');
            const { setUserActive } = await import('../../store/users.js');
            const usage = `animus users ${name} --agent <id> <user>`;
            const { agent, rest } = splitAgentArgs(raw.agent, args, usage);
            const [ref] = expectArgs(rest, ['user'], usage);
            const result = await writeAgentDb(ctx, agent, undefined, usage, (db) => setUserActive(db, ref!, active));
            ctx.out.result(result, () => `user ${result.id} of ${result.agent} ${result.changed ? 'is now' : 'was already'} ${active ? 'active' : 'inactive'}`);
          }),
        ),
      [`animus users ${name} ${EXAMPLE_ID} 7`, `animus users ${name} --agent ${EXAMPLE_ID} @alice`],
    );
  }
}

function status(ctx: CliContext, active: boolean): string {
  return active ? ctx.out.style.green('active') : ctx.out.style.yellow('inactive');
}
