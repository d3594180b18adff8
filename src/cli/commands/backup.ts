import type { Command } from 'commander';
import { AnimusError, EXIT, isAnimusError } from '../../core/errors.js';
import type { CliContext } from '../context.js';
import { EXAMPLE_ID, examples, type Action } from '../program.js';

const PASSPHRASE_ENV = 'ANIMUS_BACKUP_PASSPHRASE';

interface BackupFlags {
  all?: boolean;
  out?: string;
  keep?: string;
  encrypt?: boolean;
}

export function registerBackupCommands(program: Command, action: Action): void {
  const backup = examples(
    program
      .command('backup')
      .argument('[ids...]', 'agents to back up')
      .description('archive each agent: an online snapshot of its database, .env, settings.json and its clone\'s commit, one file per agent (mode 0600) with a sha256 manifest')
      .option('--all', 'every agent in the home')
      .option('--out <dir>', 'where archives go, in a folder per agent (default: <home>/backups)')
      .option('--keep <n>', 'keep only the newest N archives of each agent backed up')
      .option('--encrypt', `encrypt with AES-256-GCM; passphrase from $${PASSPHRASE_ENV} or asked on a terminal`)
      .action(
        action(async (ctx, ids: string[], flags: BackupFlags) => {
          const home = await ctx.home();
          const { resolveTargets } = await import('../../process/fleet.js');
          const { defaultBackupDir } = await import('../../backup/create-backup.js');
          const { backupMany } = await import('../../backup/backup-many.js');
          const { settle } = await import('./agents.js');
          const keep = parseKeep(flags.keep);
          const targets = await resolveTargets(home, ids, flags.all === true);
          let key: import('../../backup/cipher.js').ArchiveKey | undefined;
          if (flags.encrypt) {
            const { deriveNewKey } = await import('../../backup/cipher.js');
            key = await deriveNewKey(await passphrase(ctx, { confirm: true }));
          }
          const outDir = flags.out ?? defaultBackupDir(home);
          const progress = ctx.out.progress(`backing up ${targets.length === 1 ? targets[0]!.agent.id : `${targets.length} agents`}`);
          const outcomes = await backupMany(targets, { outDir, keep, key, signal: ctx.signal, onDone: (done) => progress.update(`backing up: ${done} of ${targets.length}`) });
          // Agents never started because of Ctrl-C are one line, not one error each.
          const notStarted = (o: (typeof outcomes)[number]) => !o.ok && isAnimusError(o.error) && o.error.code === 'EINTERRUPTED';
          const interrupted = targets.filter((_, i) => notStarted(outcomes[i]!)).map((t) => t.agent.id);
          const attempted = outcomes.map((o, i) => ({ o, id: targets[i]!.agent.id })).filter(({ o }) => !notStarted(o));
          const { succeeded, failed } = settle(ctx, attempted.map(({ o }) => o), attempted.map(({ id }) => id));
          for (const b of succeeded) for (const note of b.notes) ctx.out.warn(`${b.id}: ${note}`);
          if (interrupted.length > 0) {
            progress.fail(`interrupted: backed up ${succeeded.length} of ${targets.length} agents; ${interrupted.length} not started`);
            ctx.setExitCode(EXIT.interrupted);
          } else if (succeeded.length === 0) progress.fail();
          else progress.done(targets.length === 1 ? undefined : `backed up ${succeeded.length} of ${targets.length} agents into ${outDir}`);
          ctx.out.result({ outDir, backups: succeeded, failed, ...(interrupted.length > 0 ? { interrupted } : {}) }, () =>
            targets.length > 20
              ? undefined
              : succeeded.map((b) => `${ctx.out.style.green('✓')} ${b.id}  ${b.archive}  ${formatBytes(b.bytes)}${b.encrypted ? '  encrypted' : ''}${b.pruned.length ? `  (pruned ${b.pruned.length})` : ''}`),
          );
        }),
      ),
    [`animus backup ${EXAMPLE_ID}`, 'animus backup --all --keep 7', `${PASSPHRASE_ENV}=... animus backup --all --encrypt --out /mnt/offsite`],
  );

  examples(
    backup
      .command('list')
      .argument('[id]', 'only this agent\'s archives')
      .description('archives in the backup folder, newest first, read from their manifests')
      .option('--dir <dir>', 'backup folder (default: <home>/backups)')
      .action(
        action(async (ctx, id: string | undefined, flags: { dir?: string }) => {
          const { listArchives } = await import('../../backup/list-backups.js');
          const { printable } = await import('../../backup/archive-format.js');
          const { defaultBackupDir } = await import('../../backup/create-backup.js');
          const { parseAgentId } = await import('../../core/agent-id.js');
          const agentId = id ? parseAgentId(id).id : undefined;
          const dir = flags.dir ?? defaultBackupDir(await ctx.home());
          const archives = await listArchives(dir, agentId);
          ctx.out.result(archives, () => {
            if (archives.length === 0) return `no archives in ${dir}${agentId ? ` for ${agentId}` : ''}: make one with \`animus backup\``;
            return ctx.out.table(archives, [
              { header: 'AGENT', value: (a) => printable(a.agentId) },
              { header: 'CREATED', value: (a) => a.createdAt ?? '' },
              { header: 'SIZE', value: (a) => formatBytes(a.bytes), align: 'right' },
              { header: 'ENC', value: (a) => (a.encrypted ? 'yes' : a.encrypted === false ? 'no' : '') },
              { header: 'SCHEMA', value: (a) => (a.schemaVersion === null ? '' : String(a.schemaVersion)), align: 'right' },
              { header: 'RUNTIME', value: (a) => a.commit?.slice(0, 12) ?? '' },
              { header: 'ARCHIVE', value: (a) => (a.problem ? ctx.out.style.red(printable(`${a.archive}: ${a.problem}`)) : printable(a.archive)) },
            ]);
          });
        }),
      ),
    ['animus backup list', `animus backup list ${EXAMPLE_ID} --json`],
  );

  examples(
    backup
      .command('verify <archive>')
      .description('prove an archive restorable: manifest, sha256 of each file (and the GCM tag when encrypted), the database\'s integrity_check')
      .action(
        action(async (ctx, archive: string) => {
          const { verifyArchive } = await import('../../backup/verify-backup.js');
          const { readManifest } = await import('../../backup/read-archive.js');
          const { printable } = await import('../../backup/archive-format.js');
          const { resolve } = await import('node:path');
          const path = resolve(archive);
          const { manifest } = await readManifest(path);
          const secret = manifest.encrypted ? await passphrase(ctx, { confirm: false }) : undefined;
          const home = await ctx.home();
          const result = await ctx.out.during(`verifying ${printable(path)}`, () => verifyArchive(path, secret, home));
          for (const note of result.notes) ctx.out.warn(printable(note));
          ctx.out.result(result, () => [
            `${ctx.out.style.green('✓')} ${printable(path)}`,
            `  agent ${result.agentId}, made ${result.createdAt} by animus ${result.animusVersion}${result.encrypted ? ', encrypted (authenticated)' : ''}`,
            `  schema ${result.schemaVersion}, runtime ${result.commit?.slice(0, 12) ?? 'unknown'}${result.origin ? ` from ${printable(result.origin)}` : ''}, integrity_check ok`,
            ...(result.rows ? [`  rows: ${Object.entries(result.rows).map(([t, n]) => `${t} ${n}`).join(', ')}`] : []),
            ...result.files.map((f) => `  ${f.name.padEnd(13)} ${formatBytes(f.size).padStart(9)}  sha256 ${f.sha256.slice(0, 16)}… ok`),
          ]);
        }),
      ),
    [`animus backup verify ~/animus/backups/${EXAMPLE_ID}/${EXAMPLE_ID}_20261121T233419123Z.animus-backup`],
  );

  examples(
    program
      .command('restore <id>')
      .description('restore an agent from an archive: verified first, instance stopped, current files kept beside as *.pre-restore-<time>, restarted if it was running; a missing agent is recreated')
      .requiredOption('--from <archive>', 'the archive to restore')
      .option('--code', 'also check out the runtime commit recorded in the archive')
      .option('--start', 'start the instance afterwards even if it was not running')
      .option('--no-start', 'leave the instance stopped')
      .option('--trust-origin', "recreate a missing agent's runtime from the origin the archive records, even if it is not this home's runtime nor the configured runtimeRepo")
      .action(
        action(async (ctx, id: string, flags: { from: string; code?: boolean; start?: boolean; trustOrigin?: boolean }) => {
          const { resolve } = await import('node:path');
          const { readManifest } = await import('../../backup/read-archive.js');
          const { chooseOrigin, restoreAgent } = await import('../../backup/restore-backup.js');
          const { readPreferences } = await import('../../config/preferences.js');
          const { printable } = await import('../../backup/archive-format.js');
          const { agentPaths } = await import('../../home/layout.js');
          const { isDirectory } = await import('../../core/fs.js');
          const { processControlFor } = await import('../../backup/process-control.js');
          const { parseAgentId } = await import('../../core/agent-id.js');
          const { confirm } = await import('./prompts.js');
          const agent = parseAgentId(id);
          const archive = resolve(flags.from);
          const home = await ctx.home();
          const { manifest } = await readManifest(archive);
          const secret = manifest.encrypted ? await passphrase(ctx, { confirm: false }) : undefined;
          const saved = await readPreferences(ctx.env);
          const trust = { trustedOrigins: saved.runtimeRepo ? [saved.runtimeRepo] : [], trustOrigin: flags.trustOrigin === true };
          const recreating = !(await isDirectory(agentPaths(home, agent).dir));
          // A missing agent is recreated: say from which repository its code will come before anything runs.
          if (recreating) ctx.out.info(`${agent.id} does not exist: it will be recreated with the runtime from ${printable(chooseOrigin(home, manifest, trust).shown)}`);
          await confirm(ctx, `Restore ${agent.id} from the backup of ${manifest.createdAt}? ${recreating ? 'It is recreated' : 'Its current database is kept beside it'}`, '--yes');
          const result = await ctx.out.during(
            `restoring ${agent.id}`,
            (progress) =>
              restoreAgent({
                home,
                id: agent.id,
                archive,
                passphrase: secret,
                code: flags.code === true,
                start: flags.start,
                process: processControlFor(home, ctx.env),
                ...trust,
                onStep: (step) => progress.update(`restoring ${agent.id}: ${step}`),
              }),
            () => `restored ${agent.id} from ${manifest.createdAt}`,
          );
          for (const note of result.notes) ctx.out.warn(printable(note));
          if (result.process.started === 'failed') ctx.setExitCode(EXIT.failure);
          ctx.out.result(result, () => [
            `${ctx.out.style.green('✓')} ${agent.id}: ${result.restored.join(', ')} restored${result.recreated ? ' into a recreated folder' : ''}`,
            ...result.preRestore.map((p) => `  previous copy kept: ${p}`),
            ...(result.commit.checkedOut && result.commit.recorded ? [`  runtime at ${result.commit.recorded.slice(0, 12)}`] : []),
            ...(result.origin ? [`  runtime cloned from ${printable(result.origin)}`] : []),
            `  process: ${result.process.stopped}, then ${result.process.started}`,
          ]);
        }),
      ),
    [`animus restore ${EXAMPLE_ID} --from ~/animus/backups/${EXAMPLE_ID}/${EXAMPLE_ID}_20261121T233419123Z.animus-backup`, `animus restore ${EXAMPLE_ID} --from backup.animus-backup --code --yes`],
  );
}

function parseKeep(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new AnimusError('EUSAGE', `--keep "${text}" must be a whole number of archives, 1 or more`);
  return n;
}

/** From the environment, else asked (twice when making archives, so a typo cannot lock them). */
async function passphrase(ctx: CliContext, options: { confirm: boolean }): Promise<string> {
  const fromEnv = ctx.env[PASSPHRASE_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  if (!ctx.interactive) throw new AnimusError('EUSAGE', `a backup passphrase is needed: set ${PASSPHRASE_ENV} (or run on a terminal to be asked)`);
  const { askText } = await import('./prompts.js');
  const first = await askText(ctx, 'Backup passphrase', PASSPHRASE_ENV, { secret: true, validate: (v) => (v.length < 8 ? 'at least 8 characters' : true) });
  if (options.confirm) {
    const again = await askText(ctx, 'Same passphrase again', PASSPHRASE_ENV, { secret: true });
    if (again !== first) throw new AnimusError('EUSAGE', 'the two passphrases differ: nothing was backed up; try again');
  }
  return first;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}
