import type { Command } from 'commander';
import { examples, type Action } from '../program.js';

export function registerHomeCommands(program: Command, action: Action): void {
  examples(
    program
      .command('init')
      .description('create the animus home and its shared runtime, or repair what is missing (idempotent)')
      .action(
        action(async (ctx) => {
          const { initHome } = await import('../../home/init.js');
          const home = await ctx.home();
          const result = await ctx.out.during('preparing the home', () => initHome(home));
          ctx.out.result(result, () => [
            `${result.created ? 'Created' : 'Checked'} ${result.home}`,
            ...result.changes.map((change) => `  ${change}`),
            ...(result.changes.length === 0 ? ['  nothing to repair'] : []),
            `  runtime ${result.runtimeVersion} at ${result.runtimeCommit.slice(0, 12)} (${result.runtimeRepo})`,
          ]);
        }),
      ),
    ['animus init', 'animus init --home /srv/animus'],
  );

  const config = program.command('config').description('persistent CLI preferences: default home, process manager, runtime repo');
  examples(
    config
      .command('list')
      .description('show every preference and where they are stored')
      .action(
        action(async (ctx) => {
          const { readPreferences, preferencesPath, PREFERENCE_SPECS } = await import('../../config/preferences.js');
          const values = await readPreferences(ctx.env);
          const path = preferencesPath(ctx.env);
          const { home, source } = await ctx.resolveHome();
          ctx.out.result({ path, values, effectiveHome: home, homeSource: source }, () => [
            ctx.out.table(Object.entries(PREFERENCE_SPECS), [
              { header: 'KEY', value: ([key]) => key },
              { header: 'VALUE', value: ([key]) => String(values[key as keyof typeof values] ?? ctx.out.style.dim('(unset)')) },
              { header: 'MEANING', value: ([, spec]) => spec.description },
            ]),
            '',
            `home in use: ${home} (from ${source})`,
            `stored in ${path}`,
          ]);
        }),
      ),
    ['animus config list', 'animus config list --json'],
  );
  examples(
    config
      .command('get <key>')
      .description('print one preference')
      .action(
        action(async (ctx, key: string) => {
          const { readPreferences, assertPreferenceKey } = await import('../../config/preferences.js');
          const name = assertPreferenceKey(key);
          const value = (await readPreferences(ctx.env))[name];
          ctx.out.result({ key: name, value: value ?? null }, () => value ?? '');
        }),
      ),
    ['animus config get home'],
  );
  examples(
    config
      .command('set <key> <value>')
      .description('store a preference')
      .action(
        action(async (ctx, key: string, value: string) => {
          const { openPreferences, assertPreferenceKey } = await import('../../config/preferences.js');
          const name = assertPreferenceKey(key);
          const stored = (await openPreferences(ctx.env)).set(name, value);
          ctx.out.result({ key: name, value: stored }, () => `${name} = ${stored}`);
        }),
      ),
    ['animus config set home /srv/animus', 'animus config set processManager systemd'],
  );
  examples(
    config
      .command('unset <key>')
      .description('forget a preference (its default applies again)')
      .action(
        action(async (ctx, key: string) => {
          const { openPreferences, assertPreferenceKey } = await import('../../config/preferences.js');
          const name = assertPreferenceKey(key);
          (await openPreferences(ctx.env)).unset(name);
          ctx.out.result({ key: name, value: null }, () => `${name} unset`);
        }),
      ),
    ['animus config unset runtimeRepo'],
  );
  examples(
    config
      .command('path')
      .description('print the path of the preferences file')
      .action(
        action(async (ctx) => {
          const { preferencesPath } = await import('../../config/preferences.js');
          const path = preferencesPath(ctx.env);
          ctx.out.result({ path }, () => path);
        }),
      ),
    ['animus config path'],
  );
}
