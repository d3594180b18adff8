import type { Command } from 'commander';
import { AnimusError } from '../../core/errors.js';
import { examples, type Action } from '../program.js';

interface ScopeFlags {
  user?: boolean;
  system?: boolean;
  runAs?: string;
  createUser?: boolean;
}

export function registerSystemdCommands(program: Command, action: Action): void {
  const systemd = program.command('systemd').description("run agents under systemd: a hardened template unit animus-<home hash>@<uuid> per home, grouped under the home's animus-<home hash>.target");

  examples(
    systemd
      .command('install')
      .description("write this home's units, reload systemd, and enable and start the home's target")
      .option('--user', "the user's own systemd manager (default unless root)")
      .option('--system', 'the system manager (/etc/systemd/system; needs root)')
      .option('--run-as <account>', 'unprivileged account the agents run as under --system (default: $SUDO_USER; never root)')
      .option('--create-user', 'with --system: create the --run-as account as a system account if it does not exist')
      .action(
        action(async (ctx, raw: ScopeFlags) => {
          const scope = normalizeScope(raw);
          const { installUnits } = await import('../../process/systemd.js');
          const result = await installUnits({ home: await ctx.home(), env: ctx.env, scope, user: raw.runAs, createUser: raw.createUser });
          const flag = result.scope === 'user' ? ' --user' : '';
          const ok = ctx.out.style.green('✓');
          ctx.out.result(result, () => [
            ...(result.account?.created ? [`${ok} created the system account ${result.account.name}`] : []),
            ...result.files.map((file) => `${ok} wrote ${file}`),
            ...(result.chowned.length > 0 ? [`${ok} gave ${result.chowned.length} agent folder(s) to ${result.account!.name}`] : []),
            `${ok} systemctl${flag} daemon-reload; enabled and started ${result.units.target}`,
            '',
            `Agents deployed with --process-manager systemd now start with \`animus start <id>\`${result.account ? ` and run as ${result.account.name}` : ''};`,
            `the whole fleet: systemctl${flag} start|stop|restart ${result.units.target}`,
            ...(result.scope === 'user' ? ['To keep them running while you are logged out: loginctl enable-linger'] : []),
            ...result.notes.map((note) => `${ctx.out.style.yellow('!')} ${note}`),
          ]);
        }),
      ),
    ['animus systemd install', 'sudo animus systemd install --system --run-as animus --create-user'],
  );

  examples(
    systemd
      .command('render')
      .description('write the units exactly as install would, without touching systemd (to review or verify them)')
      .requiredOption('--out <dir>', 'folder to write the units to (created if missing)')
      .option('--user', "as for the user's own systemd manager (default unless root)")
      .option('--system', 'as for the system manager')
      .option('--run-as <user>', 'account the agents run as under --system')
      .action(
        action(async (ctx, raw: ScopeFlags & { out: string }) => {
          const scope = normalizeScope(raw);
          const { renderUnitsTo } = await import('../../process/systemd-render.js');
          const result = await renderUnitsTo({ home: await ctx.home(), out: raw.out, scope, user: raw.runAs, env: ctx.env });
          ctx.out.result(result, () => [
            ...result.files.map((file) => `${ctx.out.style.green('✓')} wrote ${file}`),
            '',
            `Check them: systemd-analyze verify ${result.files[0]!.replace(/@\.service$/, '@<uuid>.service')}; systemd-analyze security --offline=yes …`,
          ]);
        }),
      ),
    ['animus systemd render --out ./units', 'animus systemd render --out /tmp/units --system --run-as animus'],
  );
}

function normalizeScope(raw: ScopeFlags): 'user' | 'system' | undefined {
  if (raw.user && raw.system) throw new AnimusError('EUSAGE', 'pass --user or --system, not both');
  if (raw.runAs && raw.user) throw new AnimusError('EUSAGE', '--run-as only applies to --system: a user manager runs agents as its own user');
  if (raw.createUser && !raw.runAs) throw new AnimusError('EUSAGE', '--create-user needs --run-as <account>: the name of the account to create');
  return raw.system ? 'system' : raw.user ? 'user' : undefined;
}
