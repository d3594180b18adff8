import { spawn } from 'node:child_process';
import { AnimusError, describeError } from '../core/errors.js';

export interface RunGitOptions {
  cwd?: string;
  signal?: AbortSignal;
  /** Added to the environment (identity for commits, GIT_INDEX_FILE). */
  env?: Record<string, string>;
  /** Ends the git process group after this long (clones and fetches: a remote that never answers). */
  timeoutMs?: number;
  /**
   * Ends git when animus itself dies, even by SIGKILL (which no handler sees): git runs
   * under a small shell that holds a pipe from animus and ends its own process group
   * when that pipe closes. For the long calls (clone, fetch); a short one needs none.
   */
  watchParent?: boolean;
}

/**
 * `sh -c WATCHDOG sh git args...`: runs git in the background, and a reader of fd 3 (the
 * pipe from animus, duplicated because an asynchronous list's stdin is /dev/null) that
 * kills the whole group at end of file, i.e. when animus is gone. Git's exit status is
 * the shell's.
 */
const WATCHDOG = 'exec 3<&0; "$@" </dev/null & g=$!; { read _ <&3; kill -9 -$$; } & r=$!; wait $g; s=$?; kill $r 2>/dev/null; exit $s';

/** A git command that ran and failed; its message is git's last line of complaint. */
export class GitFailure extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'GitFailure';
  }
}

/**
 * Runs git and resolves with its stdout (trailing newline removed). Every git call of
 * animus goes through here, so all of them:
 * - never stop to ask for a password, an editor or a pager;
 * - ignore a caller's GIT_DIR, GIT_WORK_TREE and the like, which would point git elsewhere;
 * - run in a process group of their own, ended whole when the signal aborts and waited
 *   for: a clone over the network has helper processes (remote-http) that would
 *   otherwise outlive the command and keep writing into a folder being cleaned up.
 * A missing git is EGIT; an interrupted one EINTERRUPTED; a failing one a GitFailure.
 */
export async function runGit(args: string[], options: RunGitOptions = {}): Promise<string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !key.startsWith('GIT_')) env[key] = value;
  Object.assign(env, { GIT_TERMINAL_PROMPT: '0', GIT_EDITOR: 'true', GIT_PAGER: 'cat', LC_ALL: 'C' }, options.env);

  const child = options.watchParent
    ? spawn('sh', ['-c', WATCHDOG, 'sh', 'git', ...args], { cwd: options.cwd, env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] })
    : spawn('git', args, { cwd: options.cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const endGroup = () => {
    try {
      if (child.pid) process.kill(-child.pid, 'SIGTERM');
    } catch {
      // Already gone.
    }
  };
  options.signal?.addEventListener('abort', endGroup, { once: true });
  let timedOut = false;
  const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => {
    timedOut = true;
    endGroup();
  }, options.timeoutMs);
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', resolve);
    });
    if (options.signal?.aborted) throw new AnimusError('EINTERRUPTED', `git ${args[0]}: interrupted`);
    if (timedOut) throw new GitFailure(`git ${args[0]} did not finish within ${Math.round(options.timeoutMs! / 1000)} s (a remote that does not answer?)`);
    if (code !== 0) throw new GitFailure(lastComplaint(stderr) ?? `git ${args[0]} exited with ${code}`);
    return stdout.replace(/\n$/, '');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new AnimusError('EGIT', 'git is not installed: install it (apt-get install git) and try again', { cause: error });
    }
    if (error instanceof AnimusError || error instanceof GitFailure) throw error;
    throw new GitFailure(describeError(error), error);
  } finally {
    if (timer) clearTimeout(timer);
    child.stdin?.destroy();
    options.signal?.removeEventListener('abort', endGroup);
  }
}

function lastComplaint(stderr: string): string | undefined {
  const lines = stderr.split('\n').map((line) => line.trim()).filter((line) => line !== '');
  return lines.at(-1)?.replace(/^(fatal|error): /, '');
}
