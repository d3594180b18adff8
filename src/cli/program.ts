// Bundled into the CLI (its code cache covers it): every command needs it at once.
import { Command } from 'commander';
import { isatty } from 'node:tty';
import { onNotice } from '../core/notices.js';
import { VERSION } from '../core/version.js';
import { createHomeResolver, type CliContext, type GlobalOptions } from './context.js';
import { loadStyle, Output } from './output.js';
import { registerAgentCommands } from './commands/agents.js';
import { registerApprovalCommands } from './commands/approvals.js';
import { registerAuditCommands } from './commands/audit.js';
import { registerBackupCommands } from './commands/backup.js';
import { registerEnvCommands } from './commands/env.js';
import { registerHealthCommands } from './commands/health.js';
import { registerHomeCommands } from './commands/home.js';
import { registerKubernetesCommands } from './commands/kubernetes.js';
import { registerProcessCommands } from './commands/process.js';
import { registerQueueCommands } from './commands/queue.js';
import { registerRuntimeCommands } from './commands/runtime.js';
import { registerSettingsCommands } from './commands/settings.js';
import { registerStatusCommands } from './commands/status.js';
import { registerMetricsCommands } from './commands/metrics.js';
import { registerSystemdCommands } from './commands/systemd.js';
import { registerUpdateCommands } from './commands/update.js';
import { registerUserCommands } from './commands/users.js';


export interface ProgramOptions {
  signal: AbortSignal;
  env: NodeJS.ProcessEnv;
  /** Where commands leave the exit code of failures they reported themselves. */
  exit: { code: number };
  /** The arguments as typed (for the audit record); default process.argv. */
  argv?: readonly string[];
}

/** Wraps a command handler: builds the context from the global flags, then runs it. */
export type Action = <Args extends unknown[]>(
  handler: (ctx: CliContext, ...args: Args) => Promise<void>,
) => (...args: unknown[]) => Promise<void>;

export function buildProgram(options: ProgramOptions): Command {
  const program = new Command('animus')
    .description('Run many Letta agents side by side, each in its own isolated message-broker instance.')
    .version(VERSION, '-V, --version')
    .option('--home <dir>', 'animus home (default: $ANIMUS_HOME, then `animus config get home`, then ~/animus)')
    .option('--json', 'print one JSON document for scripts')
    .option('--no-color', 'plain output (also NO_COLOR=1)')
    .option('-y, --yes', 'never prompt; fail instead when a value is missing (the default when stdin is not a terminal)')
    .exitOverride()
    // Usage errors stay one line, with the pointer to --help on it.
    .configureOutput({ outputError: (text, write) => write(`animus: ${text.replace(/^error: /, '').trim().replace(/\s*\n\s*/g, ' ')} (see --help)\n`) });

  const action: Action = (handler) => async (...args) => {
    const command = args[args.length - 1] as Command;
    const raw = command.optsWithGlobals() as Record<string, unknown>;
    const globals: GlobalOptions = {
      home: raw.home as string | undefined,
      json: raw.json === true,
      color: raw.color !== false && !options.env.NO_COLOR && (process.stdout.isTTY === true || Boolean(options.env.FORCE_COLOR)),
      yes: raw.yes === true,
    };
    const out = new Output({ json: globals.json, color: globals.color, style: await loadStyle(globals.color) });
    // What the domain says outside its results (an interrupted restore finished by this command).
    onNotice((text) => out.warn(text));
    const homes = createHomeResolver(globals, options.env, commandPath(command));
    const ctx: CliContext = {
      out,
      globals,
      command: commandPath(command),
      env: options.env,
      // isatty, not process.stdin.isTTY: touching process.stdin sets up a stream for it (a few ms at every start).
      interactive: !globals.yes && isatty(0) && isatty(2) && !options.env.CI,
      signal: options.signal,
      ...homes,
      setExitCode: (code) => {
        if (options.exit.code === 0) options.exit.code = code;
      },
    };
    const run = () => handler(ctx, ...(args.slice(0, -1) as Parameters<typeof handler> extends [CliContext, ...infer A] ? A : never as never));
    // Commands that change something leave an audit record, whatever their outcome.
    const { isAudited, recordAudit } = await import('./audit-hook.js');
    if (!isAudited(ctx.command, raw)) return run();
    const argv = (options.argv ?? process.argv.slice(2)).slice();
    try {
      await run();
    } catch (error) {
      await recordAudit(ctx, argv, raw, options.exit.code, error);
      throw error;
    }
    await recordAudit(ctx, argv, raw, options.exit.code);
  };

  for (const { register } of registrarsFor(options.argv ?? [])) register(program, action);
  return program;
}

type Registrar = (program: Command, action: Action) => void;

/**
 * Every command module's registrar, in the order --help lists the commands, with the
 * top-level names (and aliases) it registers. test/cli/program.test.ts checks each list
 * against what its registrar really registers.
 */
export const REGISTRARS: ReadonlyArray<{ register: Registrar; names: readonly string[] }> = [
  { register: registerHomeCommands, names: ['init', 'config'] },
  { register: registerAgentCommands, names: ['deploy', 'list', 'ls', 'remove', 'rm', 'adopt'] },
  { register: registerProcessCommands, names: ['start', 'stop', 'restart', 'logs', 'startup'] },
  { register: registerStatusCommands, names: ['status', 'top'] },
  { register: registerMetricsCommands, names: ['metrics', 'serve'] },
  { register: registerSystemdCommands, names: ['systemd'] },
  { register: registerKubernetesCommands, names: ['kubernetes'] },
  { register: registerRuntimeCommands, names: ['send', 'telegram'] },
  { register: registerHealthCommands, names: ['health'] },
  { register: registerBackupCommands, names: ['backup', 'restore'] },
  { register: registerQueueCommands, names: ['queue'] },
  { register: registerUserCommands, names: ['users'] },
  { register: registerApprovalCommands, names: ['approvals'] },
  { register: registerSettingsCommands, names: ['settings'] },
  { register: registerEnvCommands, names: ['env'] },
  { register: registerUpdateCommands, names: ['update', 'rollback'] },
  { register: registerAuditCommands, names: ['audit'] },
];

/**
 * The registrar of the command the arguments name, alone: commander then builds the
 * commands of one module instead of some sixty (a tenth of what `animus health` spends
 * before it starts checking). Every registrar for anything else: help (which lists all),
 * no command, or a name animus does not know (its error suggests the closest one).
 */
export function registrarsFor(args: readonly string[]): ReadonlyArray<{ register: Registrar; names: readonly string[] }> {
  const name = commandName(args);
  const one = name === undefined ? undefined : REGISTRARS.find((registrar) => registrar.names.includes(name));
  return one ? [one] : REGISTRARS;
}

/** The first argument that is neither a global option nor --home's value; undefined before it for help or `--`. */
function commandName(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '-h' || arg === '--help' || arg === '--') return undefined;
    if (arg === '--home') i++;
    else if (!arg.startsWith('-')) return arg;
  }
  return undefined;
}

/** `queue flush`: the command's names from below the program down to it. */
export function commandPath(command: Command): string {
  const names: string[] = [];
  for (let at: Command | null = command; at?.parent; at = at.parent) names.unshift(at.name());
  return names.join(' ');
}

/** The agent id every command's --help examples use. */
export const EXAMPLE_ID = 'agent-721679f6-c8af-4e01-8677-dc042dc80368';

/** Appends examples to a command's --help. */
export function examples(command: Command, lines: string[]): Command {
  return command.addHelpText('after', `\nExamples:\n${lines.map((line) => `  $ ${line}`).join('\n')}\n`);
}
