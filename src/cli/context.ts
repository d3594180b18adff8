import type { Output } from './output.js';
import { DEFAULT_HOME } from '../home/layout.js';
import { resolve } from 'node:path';

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
  home(): Promise<string>;
  /**
   * The exit code of a command that has printed its failures itself (several agents,
   * some failed). The first non-zero code wins; main sets it when the command returns.
   */
  setExitCode(code: number): void;
}

export function createHomeResolver(globals: GlobalOptions, env: NodeJS.ProcessEnv) {
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
  return { resolveHome, home: async () => (await resolveHome()).home };
}
