import type { Command } from 'commander';
import { AnimusError } from '../../core/errors.js';
import { EXAMPLE_ID, examples, type Action } from '../program.js';

/*
 * `animus settings show|set`. JSON shapes (stable):
 *   show:       { agent, file, settings: <settings.json as validated>, fields: Field[] }
 *   show <key>: Field & { agent }
 *   set:        { agent, key, previous, value, changed, appliesLive }
 *   Field: { key, value, default, description, readOnly, appliesLive }
 */
export function registerSettingsCommands(program: Command, action: Action): void {
  const settings = program.command('settings').description("an agent's settings.json: show it with each key's meaning, set one key");

  examples(
    settings
      .command('show [args...]')
      .usage('[agent] [key] [options]')
      .description('every setting with its value, default and meaning (or one key)')
      .option('--agent <id>', 'the agent (or pass it as the first argument)')
      .action(
        action(async (ctx, args: string[], raw: { agent?: string }) => {
          const { splitAgentArgs, expectArgs } = await import('./agent-arg.js');
          const { requireAgent } = await import('../../instances/registry.js');
          const { readSettings } = await import('../../instances/agent-files.js');
          const { SETTINGS_FIELDS, defaultSettings, getSetting, findSettingsField } = await import('../../config/settings.js');
          const usage = 'animus settings show --agent <id> [key]';
          const { agent, rest } = splitAgentArgs(raw.agent, args, usage);
          const [key] = expectArgs(rest, ['key'], usage, 1);
          const paths = await requireAgent(await ctx.home(), agent);
          const current = await readSettings(paths);
          const defaults = defaultSettings({ agentId: paths.agent.id });
          const fields = SETTINGS_FIELDS.map((field) => ({
            key: field.path,
            value: getSetting(current, field.path),
            default: field.path === 'agent.id' ? paths.agent.id : getSetting(defaults, field.path),
            description: field.description,
            readOnly: field.readOnly === true,
            appliesLive: field.atRestart !== true && field.readOnly !== true,
          }));
          if (key !== undefined) {
            if (!findSettingsField(key)) throw new AnimusError('EUSAGE', `unknown setting "${key}": run \`animus settings show --agent ${paths.agent.id}\` to see the keys`);
            const field = fields.find((f) => f.key === key)!;
            ctx.out.result({ agent: paths.agent.id, ...field }, () => String(typeof field.value === 'string' ? field.value : JSON.stringify(field.value)));
            return;
          }
          ctx.out.result({ agent: paths.agent.id, file: paths.settings, settings: current, fields }, () => [
            `${paths.settings}`,
            ctx.out.table(fields, [
              { header: 'KEY', value: (f) => f.key },
              { header: 'VALUE', value: (f) => (JSON.stringify(f.value) === JSON.stringify(f.default) ? show(f.value) : ctx.out.style.bold(show(f.value))) },
              { header: 'DEFAULT', value: (f) => ctx.out.style.dim(show(f.default)) },
              { header: 'MEANING', value: (f) => `${f.description}${f.readOnly ? ' (fixed)' : f.appliesLive ? '' : ' (at restart)'}` },
            ]),
          ]);
        }),
      ),
    [`animus settings show ${EXAMPLE_ID}`, `animus settings show ${EXAMPLE_ID} message_mode`, `animus settings show --agent ${EXAMPLE_ID} --json`],
  );

  examples(
    settings
      .command('set <args...>')
      .usage('[agent] <key> <value> [options]')
      .description('change one setting, validated against the settings schema; the running instance picks it up without a restart')
      .option('--agent <id>', 'the agent (or pass it as the first argument)')
      .option('--force', "write it even though the agent's .env lacks what the new value needs (the running instance keeps its old settings until it has it)")
      .action(
        action(async (ctx, args: string[], raw: { agent?: string; force?: boolean }) => {
          const { splitAgentArgs, expectArgs } = await import('./agent-arg.js');
          const { requireAgent } = await import('../../instances/registry.js');
          const { readSettings, writeSettings, readEnv } = await import('../../instances/agent-files.js');
          const { setSetting, getSetting, findSettingsField } = await import('../../config/settings.js');
          const usage = 'animus settings set --agent <id> <key> <value>';
          const { agent, rest } = splitAgentArgs(raw.agent, args, usage);
          const [key, value] = expectArgs(rest, ['key', 'value'], usage);
          const paths = await requireAgent(await ctx.home(), agent);
          const { withAgentLock } = await import('../../instances/operation-lock.js');
          // Read, change and write under the agent's lock: two `settings set` at once on
          // different keys would otherwise each write its own copy and lose the other's.
          const outcome = await withAgentLock(paths, { command: ctx.command, signal: ctx.signal }, async () => {
            const current = await readSettings(paths);
            const next = setSetting(current, key!, value!);
            const previous = getSetting(current, key!);
            const updated = getSetting(next, key!);
            const changed = JSON.stringify(previous) !== JSON.stringify(updated);
            if (changed) {
              // The runtime refuses a settings file its .env cannot serve (and keeps the old
              // one): say so now rather than let the change be silently ignored.
              const { checkSettingsAgainstEnv } = await import('../../runtime/config.js');
              const env = await readEnv(paths).catch(() => undefined);
              if (env) {
                const before = new Set(checkSettingsAgainstEnv(current, env, paths.agent.id));
                const added = checkSettingsAgainstEnv(next, env, paths.agent.id).filter((problem) => !before.has(problem));
                if (added.length > 0 && !raw.force) {
                  throw new AnimusError('EBADENV', `${key} = ${show(updated)} needs what ${paths.env} lacks: ${added.join('; ')}; fix .env first, or pass --force; nothing was changed`, {
                    detail: { problems: added },
                  });
                }
                if (added.length > 0) ctx.out.warn(`the running instance will refuse this change until .env is fixed: ${added.join('; ')}`);
              }
            }
            // Unchanged: leave the file (and its mtime, which the runtime watches) alone.
            if (changed) await writeSettings(paths, next);
            return { previous, updated, changed };
          });
          const { previous, updated, changed } = outcome;
          const appliesLive = findSettingsField(key!)?.atRestart !== true;
          ctx.out.result({ agent: paths.agent.id, key, previous, value: updated, changed, appliesLive }, () => {
            if (!changed) return `${key} of ${paths.agent.id} is already ${show(updated)}: nothing changed`;
            const when = appliesLive ? 'the running instance applies it without a restart' : `applies at the next restart: animus restart ${paths.agent.id}`;
            return `${key} of ${paths.agent.id}: ${show(previous)} → ${show(updated)} (${when})`;
          });
        }),
      ),
    [`animus settings set ${EXAMPLE_ID} message_mode listen`, `animus settings set --agent ${EXAMPLE_ID} max_retries 5`],
  );
}

function show(value: unknown): string {
  return typeof value === 'string' ? (value === '' ? '""' : value) : JSON.stringify(value);
}
