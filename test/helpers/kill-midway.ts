import { execa, type ResultPromise } from 'execa';
import { afterEach } from 'vitest';
import { BIN, cliEnv, type CliEnv } from './cli.js';

/**
 * Runs the CLI as a real process and SIGKILLs it at a given moment. "The moment" is
 * found, not timed: the child is polled for the state it must be in, then stopped with
 * SIGSTOP, the state checked again (a stopped process cannot move on), and only then
 * SIGKILLed. A run that finished before it could be caught is started again.
 */
const children: ResultPromise[] = [];

afterEach(() => {
  for (const child of children.splice(0)) {
    if (child.pid && child.exitCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
});

/** Runs the CLI and SIGKILLs it once `caught()` holds while it is stopped; false when it finished first. */
export async function killWhen(args: string[], env: CliEnv, caught: () => boolean): Promise<boolean> {
  const child = execa('node', [BIN, ...args], { env: cliEnv(env), extendEnv: false, reject: false });
  children.push(child);
  let done = false;
  void child.finally(() => (done = true));
  while (!done) {
    if (caught()) {
      try {
        process.kill(child.pid!, 'SIGSTOP');
      } catch {
        break;
      }
      if (caught()) {
        process.kill(child.pid!, 'SIGKILL');
        await child;
        return true;
      }
      process.kill(child.pid!, 'SIGCONT');
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  await child;
  return false;
}

/** killWhen until it catches the moment (`before` runs ahead of each attempt), at most `attempts` runs. */
export async function killMidway(args: string[], env: CliEnv, caught: () => boolean, options: { attempts?: number; before?: () => Promise<void> } = {}): Promise<void> {
  const attempts = options.attempts ?? 10;
  for (let attempt = 0; attempt < attempts; attempt++) {
    await options.before?.();
    if (await killWhen(args, env, caught)) return;
  }
  throw new Error(`could not catch \`animus ${args.join(' ')}\` mid-way in ${attempts} runs`);
}
