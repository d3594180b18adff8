import type { Output } from './output.js';
import { DEFAULT_HOME } from '../home/layout.js';
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { AnimusError } from '../core/errors.js';

export interface GlobalOptions {
  home?: string;
  json: boolean;
  color: boolean;
  yes: boolean;
}

export type HomeSource = '--home' | 'ANIMUS_HOME' | 'config' | 'default';

/** What every command receives besides its own options. */
export interface CliContext {
  out: Output;
  globals: GlobalOptions;
  /** The command as typed, without the program name: `settings set`, `start` (what a lock holder is shown as). */
  command: string;
  env: NodeJS.ProcessEnv;
  /** A person can answer prompts: stdin and stderr are terminals and --yes was not given. */
  interactive: boolean;
  /** Aborted on Ctrl-C: long operations stop and clean up. */
  signal: AbortSignal;
  resolveHome(): Promise<{ home: string; source: HomeSource }>;
  /** The home, which must exist as a folder (except for the commands that make it: init, deploy, restore). */
  home(): Promise<string>;
  /**
   * The exit code of a command that has printed its failures itself (several agents,
   * some failed). The first non-zero code wins; main sets it when the command returns.
   */
  setExitCode(code: number): void;
}

/** The commands that create the home when it is missing; every other one needs it there. */
const CREATE_HOME = new Set(['init', 'deploy', 'restore']);

export function createHomeResolver(globals: GlobalOptions, env: NodeJS.ProcessEnv, command = '') {
  let cached: Promise<{ home: string; source: HomeSource }> | undefined;
  const resolveHome = () => {
    cached ??= (async () => {
      if (globals.home) return { home: resolve(globals.home), source: '--home' as const };
      if (env.ANIMUS_HOME) return { home: resolve(env.ANIMUS_HOME), source: 'ANIMUS_HOME' as const };
      const { readPreferences } = await import('../config/preferences.js');
      const saved = (await readPreferences(env)).home;
      if (saved) return { home: resolve(saved), source: 'config' as const };
      return { home: DEFAULT_HOME, source: 'default' as const };
    })();
    return cached;
  };
  const home = async () => {
    const { home: dir } = await resolveHome();
    if (!CREATE_HOME.has(command)) requireHomeFolder(dir);
    return dir;
  };
  return { resolveHome, home };
}

/** A home given as a file or a folder that is not there: the same line, exit 3, for every command. */
export function requireHomeFolder(dir: string): void {
  let folder = false;
  try {
    folder = statSync(dir, { throwIfNoEntry: false })?.isDirectory() === true;
  } catch {
    // ENOTDIR: a file on the way is no home either.
  }
  if (folder) return;
  throw new AnimusError('ENOTFOUND', `no animus home at ${dir}: run \`animus init${dir === DEFAULT_HOME ? '' : ` --home ${dir}`}\``);
}
