import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { parseSettingsJson, serializeSettings, type Settings } from '../../src/config/settings.js';
import { setEnvValue } from '../../src/config/env-file.js';
import { writeFileAtomic } from '../../src/core/fs.js';
import type { AgentPaths } from '../../src/home/layout.js';

/**
 * Runs the built runtime (`runtime/main.js` in a deployed agent's clone) as a child
 * process with the agent folder as cwd, collecting its JSON log lines. Every runtime
 * started here is SIGKILLed by pid after each test if still running.
 */
export interface LogLine {
  time: string;
  level: string;
  agent: string;
  msg: string;
  item?: number;
  [key: string]: unknown;
}

export interface RuntimeProcess {
  child: ChildProcess;
  pid: number;
  logs: LogLine[];
  stdout: () => string;
  stderr: () => string;
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started = new Set<ChildProcess>();

afterEach(() => {
  for (const child of started) {
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
  started.clear();
});

/** `wrap`: a command the runtime runs under (e.g. `unshare` to make it PID 1 of a pid namespace, as in a container). */
export function startRuntime(paths: AgentPaths, env: Record<string, string> = {}, wrap: string[] = []): RuntimeProcess {
  const [command, ...args] = [...wrap, process.execPath, join(paths.clone, 'main.js')];
  const child = spawn(command!, args, {
    cwd: paths.dir,
    // The runtime writes logs/runtime.log itself; ANIMUS_LOG_STDOUT=1 also gives the lines to this harness.
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LANG: 'C.UTF-8', ANIMUS_LOG_STDOUT: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.add(child);
  let out = '';
  let err = '';
  let partial = '';
  const logs: LogLine[] = [];
  const listeners = new Set<() => void>();
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.trim() === '') continue;
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ time: '', level: 'raw', agent: '', msg: line });
      }
    }
    for (const listener of [...listeners]) listener();
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      for (const listener of [...listeners]) listener();
      resolve({ code, signal });
    });
  });
  return {
    child,
    pid: child.pid!,
    logs,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitForLog(predicate, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = logs.find(predicate);
          if (found) {
            finish();
            resolve(found);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            finish();
            reject(new Error(`runtime exited (${child.exitCode ?? child.signalCode}) before the expected log line\nstdout:\n${out}\nstderr:\n${err}`));
          }
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`timed out waiting for a log line\nstdout:\n${out}\nstderr:\n${err}`));
        }, timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
  };
}

/** Edits settings.json the way animus does (validated, atomic rename). */
export async function updateSettings(paths: AgentPaths, edit: (settings: Settings) => void): Promise<Settings> {
  const settings = parseSettingsJson(await readFile(paths.settings, 'utf8'), paths.settings);
  edit(settings);
  await writeFileAtomic(paths.settings, serializeSettings(settings));
  return settings;
}

export async function setEnv(paths: AgentPaths, values: Record<string, string>): Promise<void> {
  let text = await readFile(paths.env, 'utf8');
  for (const [key, value] of Object.entries(values)) text = setEnvValue(text, key, value);
  await writeFileAtomic(paths.env, text);
}

/** Fast schedules so retries and polls take milliseconds in tests. */
export const FAST_ENV = {
  ANIMUS_RETRY_BASE_MS: '20',
  ANIMUS_DELIVERY_RETRY_BASE_MS: '20',
  TELEGRAM_POLL_TIMEOUT_S: '1',
  TELEGRAM_POLL_FLOOR_MS: '20',
  TELEGRAM_CONFLICT_RETRY_MS: '100',
  ANIMUS_SETTINGS_POLL_MS: '200',
};
