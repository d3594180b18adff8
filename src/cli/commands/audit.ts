import type { Command } from 'commander';
import { EXAMPLE_ID, examples, type Action } from '../program.js';

/*
 * `animus audit`. JSON shape (stable): { file, records: AuditRecord[], skipped }
 *   AuditRecord: { time, user, pid, command, args[], agents[], outcome: ok|failed|interrupted, exitCode, error? }
 */
export function registerAuditCommands(program: Command, action: Action): void {
  examples(
    program
      .command('audit')
      .description('what was changed, by whom and how it ended: every command that changes an agent or the home leaves one record')
      .option('--agent <id>', "one agent's own record (its logs/audit.log, which its backups carry)")
      .option('--since <time>', 'only records from this time on: ISO time or an age (30m, 12h, 7d)')
      .action(
        action(async (ctx, raw: { agent?: string; since?: string }) => {
          const { readAudit, parseSince } = await import('../../audit/audit-log.js');
          const since = raw.since === undefined ? undefined : parseSince(raw.since);
          const home = await ctx.home();
          let agent;
          if (raw.agent !== undefined) {
            const { requireAgent } = await import('../../instances/registry.js');
            agent = await requireAgent(home, raw.agent);
          }
          const { oneLine } = await import('../../core/errors.js');
          const result = readAudit(home, { agent, since });
          if (result.skipped > 0) ctx.out.warn(`${result.skipped} line(s) of ${result.file} are not audit records: skipped`);
          ctx.out.result(result, () => {
            if (result.records.length === 0) return `no audit records${since ? ` since ${since.toISOString()}` : ''} in ${result.file}`;
            return ctx.out.table(result.records, [
              { header: 'TIME', value: (r) => r.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z') },
              { header: 'USER', value: (r) => oneLine(r.user) },
              { header: 'COMMAND', value: (r) => oneLine(r.args.join(' ') || r.command) },
              { header: 'OUTCOME', value: (r) => (r.outcome === 'ok' ? ctx.out.style.green('ok') : ctx.out.style.red(`${r.outcome} (${r.exitCode})`)) },
              { header: 'ERROR', value: (r) => oneLine(r.error ?? '') },
            ]);
          });
        }),
      ),
    ['animus audit', `animus audit --agent ${EXAMPLE_ID} --since 7d`, 'animus audit --since 2026-12-01T00:00:00Z --json'],
  );
}
