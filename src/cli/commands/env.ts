import type { Command } from 'commander';
import { AnimusError } from '../../core/errors.js';
import { EXAMPLE_ID, examples, type Action } from '../program.js';

/*
 * `animus env show|set|unset`: an agent's .env, one variable at a time. JSON shapes (stable):
 *   show:       { agent, file, variables: Array<{ key, value, secret }> }   (secret values "[REDACTED]")
 *   show <key>: { agent, key, value, secret }
 *   set|unset:  { agent, key, changed, existed, appliesAt: "restart" }
 */
export function registerEnvCommands(program: Command, action: Action): void {
  const env = program.command('env').description("an agent's .env: show it (secrets redacted), set or unset one variable (applies at the next restart)");

  examples(
    env
      .command('show [args...]')
      .usage('[agent] [key] [options]')
      .description('the variables of the agent\'s .env, values of secret-looking keys redacted')
      .option('--agent <id>', 'the agent (or pass it as the first argument)')
      .action(
        action(async (ctx, args: string[], raw: { agent?: string }) => {
          const { splitAgentArgs, expectArgs } = await import('./agent-arg.js');
          const { requireAgent } = await import('../../instances/registry.js');
          const { showAgentEnv } = await import('../../instances/agent-env.js');
          const usage = 'animus env show --agent <id> [key]';
          const { agent, rest } = splitAgentArgs(raw.agent, args, usage);
          const [key] = expectArgs(rest, ['key'], usage, 1);
          const paths = await requireAgent(await ctx.home(), agent);
          const variables = await showAgentEnv(paths);
          if (key !== undefined) {
            const entry = variables.find((v) => v.key === key);
            if (!entry) throw new AnimusError('ENOTFOUND', `${key} is not set in ${paths.env}: set it with \`animus env set ${paths.agent.id} ${key} <value>\``);
            ctx.out.result({ agent: paths.agent.id, ...entry }, () => entry.value);
            return;
          }
          ctx.out.result({ agent: paths.agent.id, file: paths.env, variables }, () => [
            paths.env,
            variables.length === 0 ? '(no variables)' : ctx.out.table(variables, [
              { header: 'KEY', value: (v) => v.key },
              { header: 'VALUE', value: (v) => (v.secret ? ctx.out.style.dim(v.value) : v.value) },
            ]),
          ]);
        }),
      ),
    [`animus env show ${EXAMPLE_ID}`, `animus env show --agent ${EXAMPLE_ID} AGENT_ENDPOINT --json`],
  );

  examples(
    env
      .command('set <args...>')
      .usage('[agent] <key> [value] [options]')
      .description('set one variable (KEY VALUE or KEY=VALUE; --stdin reads the value, so a secret stays out of the shell history)')
      .option('--agent <id>', 'the agent (or pass it as the first argument)')
      .option('--stdin', 'read the value from standard input (its first line)')
      .action(
        action(async (ctx, args: string[], raw: { agent?: string; stdin?: boolean }) => {
          const { splitAgentArgs, expectArgs } = await import('./agent-arg.js');
          const { requireAgent } = await import('../../instances/registry.js');
          const { setAgentEnv } = await import('../../instances/agent-env.js');
          const usage = 'animus env set --agent <id> <KEY> <value> (or KEY=VALUE, or KEY --stdin)';
          const { agent, rest } = splitAgentArgs(raw.agent, args, usage);
          let [key, value] = expectArgs(rest, ['key', 'value'], usage, 1);
          if (value === undefined && key!.includes('=') && !raw.stdin) [key, value] = [key!.slice(0, key!.indexOf('=')), key!.slice(key!.indexOf('=') + 1)];
          if (raw.stdin) {
            if (value !== undefined) throw new AnimusError('EUSAGE', `pass the value or --stdin, not both; usage: ${usage}`);
            value = await readStdinLine();
          }
          if (value === undefined) throw new AnimusError('EUSAGE', `missing <value> for ${key}; usage: ${usage}`);
          const paths = await requireAgent(await ctx.home(), agent);
          const result = await setAgentEnv(paths, key!, value, ctx.command);
          ctx.out.result({ ...result, appliesAt: 'restart' }, () =>
            result.changed ? `${key} of ${paths.agent.id} ${result.existed ? 'changed' : 'set'} in .env (applies at the next restart: animus restart ${paths.agent.id})` : `${key} of ${paths.agent.id} already has that value: nothing changed`,
          );
        }),
      ),
    [`animus env set ${EXAMPLE_ID} AGENT_ENDPOINT https://api.letta.com`, `printf %s "$KEY" | animus env set --agent ${EXAMPLE_ID} AGENT_API_KEY --stdin`],
  );

  examples(
    env
      .command('unset <args...>')
      .usage('[agent] <key> [options]')
      .description('remove one variable from the agent\'s .env (applies at the next restart)')
      .option('--agent <id>', 'the agent (or pass it as the first argument)')
      .action(
        action(async (ctx, args: string[], raw: { agent?: string }) => {
          const { splitAgentArgs, expectArgs } = await import('./agent-arg.js');
          const { requireAgent } = await import('../../instances/registry.js');
          const { unsetAgentEnv } = await import('../../instances/agent-env.js');
          const usage = 'animus env unset --agent <id> <KEY>';
          const { agent, rest } = splitAgentArgs(raw.agent, args, usage);
          const [key] = expectArgs(rest, ['key'], usage);
          const paths = await requireAgent(await ctx.home(), agent);
          const result = await unsetAgentEnv(paths, key!, ctx.command);
          ctx.out.result({ ...result, appliesAt: 'restart' }, () =>
            result.changed ? `${key} removed from ${paths.agent.id}'s .env (applies at the next restart: animus restart ${paths.agent.id})` : `${key} is not set in ${paths.agent.id}'s .env: nothing changed`,
          );
        }),
      ),
    [`animus env unset ${EXAMPLE_ID} TELEGRAM_BOT_TOKEN`],
  );
}

async function readStdinLine(): Promise<string> {
  if (process.stdin.isTTY) throw new AnimusError('EUSAGE', '--stdin reads the value from a pipe: printf %s "$VALUE" | animus env set ... --stdin');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk as Buffer);
    if (Buffer.concat(chunks).length > 65 * 1024) break;
  }
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}
