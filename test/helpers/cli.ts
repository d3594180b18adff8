import { execa } from 'execa';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = join(REPO_ROOT, 'bin', 'animus.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliEnv {
  /** The animus home (ANIMUS_HOME). */
  home: string;
  /** Where conf keeps preferences (ANIMUS_CONFIG_DIR); defaults beside the home. */
  configDir?: string;
  /** A PM2 daemon of the test's own (PM2_HOME); defaults beside the home. */
  pm2Home?: string;
  env?: Record<string, string | undefined>;
  input?: string;
  timeoutMs?: number;
}

/**
 * Runs the built CLI (`bin/animus.js`) as a user would, with the home, preferences and
 * PM2 daemon all inside the test's temp folder: nothing reaches the real ~/animus or
 * ~/.pm2. stdin is closed (not a TTY) unless `input` is given.
 */
export async function runCli(args: string[], options: CliEnv): Promise<CliResult> {
  const result = await execa('node', [BIN, ...args], {
    reject: false,
    input: options.input ?? '',
    timeout: options.timeoutMs ?? 60_000,
    env: cliEnv(options),
    extendEnv: false,
  });
  return { code: result.exitCode ?? -1, stdout: result.stdout, stderr: result.stderr };
}

export function cliEnv(options: CliEnv): Record<string, string> {
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    LANG: 'C.UTF-8',
    ANIMUS_HOME: options.home,
    ANIMUS_CONFIG_DIR: options.configDir ?? `${options.home}.config`,
    PM2_HOME: options.pm2Home ?? `${options.home}.pm2`,
    // A home made by hand keeps health's cache in the user's cache folder: the test's own.
    XDG_CACHE_HOME: `${options.home}.cache`,
    NO_COLOR: '1',
    ...options.env,
  };
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

/** Parses the stdout of a `--json` run; fails the test with the output when it is not JSON. */
export function json<T = unknown>(result: CliResult): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(`expected JSON on stdout (exit ${result.code})\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  }
}

/** The one `animus: …` line a refused command prints, after checking its exit code and that no stack trace came with it. */
export function oneErrorLine(result: CliResult, code: number): string {
  if (result.code !== code) throw new Error(`expected exit ${code}, got ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  if (/\n\s+at /.test(result.stderr)) throw new Error(`a stack trace on stderr:\n${result.stderr}`);
  const lines = result.stderr.trim().split('\n');
  if (lines.length !== 1) throw new Error(`expected one line on stderr, got ${lines.length}:\n${result.stderr}`);
  return lines[0]!;
}
