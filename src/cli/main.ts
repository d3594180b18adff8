import { redactText } from '../core/redact.js';
import { AnimusError, EXIT, describeError, oneLine } from '../core/errors.js';
import { CommanderError } from 'commander';
import { buildProgram } from './program.js';

export { runWorkerEntry } from './worker-entries.js';

/**
 * Entry point of `bin/animus.js`. The only place that decides exit codes and prints
 * errors: commands and the domain throw, this turns that into one line on stderr
 * (and `{"error": …}` on stdout under --json).
 */
export async function main(argv: readonly string[]): Promise<void> {
  const controller = new AbortController();
  let firstSigint = 0;
  const onSigint = () => {
    // A second Ctrl-C forces the exit. "Second" means a later press: signal-exit
    // (loaded by execa and others) re-sends the same signal at once when it believes
    // it is the last listener, and that must not skip our cleanup.
    if (firstSigint > 0 && Date.now() - firstSigint > 1000) process.exit(EXIT.interrupted);
    if (firstSigint > 0) return;
    firstSigint = Date.now();
    controller.abort(new AnimusError('EINTERRUPTED', 'interrupted'));
  };
  process.on('SIGINT', onSigint);
  const exit = { code: 0 };
  // `animus list | head`: the reader went away; that is not an error worth a stack.
  const onPipeError = (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(exit.code);
    throw error;
  };
  process.stdout.on('error', onPipeError);
  const json = argv.includes('--json');
  try {
    // An agent pushed to a cluster is operated in its pod (send, queue, users, settings, backup).
    const forward = await findClusterForward(argv);
    if (forward) {
      const { runForward } = await import('../kubernetes/forward.js');
      process.exitCode = await runForward(forward, process.env);
      return;
    }
    const program = buildProgram({ signal: controller.signal, env: process.env, exit, argv: argv.slice(2) });
    await program.parseAsync(argv as string[]);
    if (exit.code !== 0) process.exitCode = exit.code;
  } catch (error) {
    process.exitCode = report(error, json);
  } finally {
    process.off('SIGINT', onSigint);
  }
}

async function findClusterForward(argv: readonly string[]) {
  const args = argv.slice(2);
  // Only a command naming an agent can be forwarded: nothing more is loaded for the others.
  if (!args.some((arg) => /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i.test(arg))) return undefined;
  const { FORWARDED_COMMANDS, findForward } = await import('../kubernetes/forward.js');
  if (!args.some((arg) => FORWARDED_COMMANDS.has(arg))) return undefined;
  const flag = args.indexOf('--home');
  const { createHomeResolver } = await import('./context.js');
  const home = await createHomeResolver({ home: flag >= 0 ? args[flag + 1] : args.find((a) => a.startsWith('--home='))?.slice(7), json: false, color: false, yes: false }, process.env).resolveHome();
  // No home check here: without a home nothing is forwarded, and the command says so itself.
  return findForward(args, home.home);
}

function report(error: unknown, json: boolean): number {
  if (error instanceof CommanderError) {
    // Help and --version end here too; commander has printed what it had to.
    if (error.exitCode === 0) return EXIT.ok;
    if (json) printJsonError('EUSAGE', error.message.replace(/^error: /, ''));
    return EXIT.usage;
  }
  if (error instanceof AnimusError) {
    const message = redactText(oneLine(error.message));
    process.stderr.write(`animus: ${message}\n`);
    if (json) printJsonError(error.code, message, error.detail);
    return error.exitCode;
  }
  const aborted = (error as { name?: string })?.name === 'AbortError';
  if (aborted) {
    process.stderr.write('animus: interrupted\n');
    return EXIT.interrupted;
  }
  process.stderr.write(`animus: internal error: ${describeError(error)}\n`);
  if (error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  process.stderr.write('This is a bug in animus. Please report it with the output above.\n');
  if (json) printJsonError('EINTERNAL', describeError(error));
  return EXIT.internal;
}

function printJsonError(code: string, message: string, detail?: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ error: { code, message, ...(detail ? { detail } : {}) } }, null, 2)}\n`);
}
