import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { assertAgentPath, readAgentText } from '../core/agent-fs.js';
import { describeError, isAnimusError } from '../core/errors.js';
import { secretValues } from '../core/redact.js';
import { parseEnv, type EnvMap } from '../config/env-file.js';
import { envProblems, formatEnvProblem } from '../config/env-problems.js';
import { parseSettingsJson, type Settings } from '../config/settings.js';
import { ENV_FILE, SETTINGS_FILE } from '../home/layout.js';
import { assertDatabaseFiles, resolveDbLocation } from '../instances/db-path.js';
import { parseLogLevel, type LogLevel } from './logger.js';

/**
 * The runtime's configuration, read from its own agent folder only: `.env`,
 * `settings.json` and the database next to them. Everything is checked before the
 * runtime touches anything, and every problem is reported (one line each), so an
 * operator fixes them all in one go.
 */

/** sysexits EX_CONFIG: process managers are told not to restart on it. */
export const EXIT_CONFIG = 78;

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('; '));
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export interface RuntimeConfig {
  agentDir: string;
  agentId: string;
  /** The folder's .env over the inherited environment (the .env wins: a PM2 daemon inherits whatever shell started it). */
  env: EnvMap;
  settings: Settings;
  settingsPath: string;
  dbPath: string;
  /** Secret values to redact from every log line. */
  secrets: string[];
  logLevel: LogLevel;
}

export function resolveAgentDir(env: NodeJS.ProcessEnv, cwd: string): string {
  const dir = env.ANIMUS_AGENT_DIR?.trim();
  return resolve(dir ? dir : cwd);
}

export function loadRuntimeConfig(processEnv: NodeJS.ProcessEnv, cwd: string): RuntimeConfig {
  const agentDir = resolveAgentDir(processEnv, cwd);
  const problems: string[] = [];
  const envPath = join(agentDir, ENV_FILE);
  const settingsPath = join(agentDir, SETTINGS_FILE);

  let fileEnv: EnvMap = {};
  let envReadable = true;
  // Through core/agent-fs: a .env or settings.json that is a symlink is refused, not followed.
  try {
    assertAgentPath(agentDir, '.', 'dir');
    const text = readAgentText(agentDir, ENV_FILE);
    if (text === undefined) {
      envReadable = false;
      problems.push(`${envPath} is missing: run the runtime from the agent folder (or set ANIMUS_AGENT_DIR) and restore the .env`);
    } else fileEnv = parseEnv(text, envPath);
  } catch (error) {
    envReadable = false;
    problems.push(describeError(error));
  }
  const inherited = Object.fromEntries(Object.entries(processEnv).filter((entry): entry is [string, string] => entry[1] !== undefined));
  const env: EnvMap = { ...inherited, ...fileEnv };

  let settings: Settings | undefined;
  try {
    const text = readAgentText(agentDir, SETTINGS_FILE);
    if (text === undefined) problems.push(`${settingsPath} is missing: restore it from a backup or redeploy the agent`);
    else settings = parseSettingsJson(text, settingsPath);
  } catch (error) {
    const detail = isAnimusError(error) ? (error.detail?.problems as string[] | undefined) : undefined;
    if (detail) problems.push(...detail.map((p) => `settings.json: ${p}`));
    else problems.push(describeError(error));
  }

  const agentId = env.AGENT_ID?.trim() ?? '';
  const mode = settings?.message_mode ?? 'echo';
  // Without a readable .env every key would be reported missing: the one real problem is enough.
  if (envReadable) problems.push(...envProblems(env, mode, settings, agentId).map((p) => formatEnvProblem(p, envPath)));
  if (settings && agentId !== '' && settings.agent.id !== agentId) problems.push(`settings.json agent.id ${settings.agent.id} does not match AGENT_ID ${agentId}: make them the same agent`);

  const level = resolveLogLevel(env, settings);
  if (level === undefined) problems.push(`LOG_LEVEL "${env.LOG_LEVEL}" is not one of debug, info, warn, error: fix it in ${envPath}`);

  // DB_PATH from the folder's .env only (an inherited one is not the folder's choice).
  let dbPath = join(agentDir, 'animus.db');
  try {
    const location = resolveDbLocation(agentDir, fileEnv.DB_PATH);
    dbPath = location.path;
    assertDatabaseFiles(agentDir, location);
    if (!existsSync(dbPath)) problems.push(`database ${dbPath} is missing: restore it with \`animus restore\` or redeploy the agent`);
  } catch (error) {
    problems.push(describeError(error));
  }

  if (problems.length > 0 || !settings) throw new ConfigError(problems);
  // Secret-named keys and every secret-shaped value, whatever key it sits under.
  const secrets = secretValues(fileEnv);
  return { agentDir, agentId, env, settings, settingsPath, dbPath, secrets, logLevel: level ?? 'info' };
}

/** What a settings change needs before it is applied (hot reload keeps the old settings otherwise). */
export function checkSettingsAgainstEnv(settings: Settings, env: EnvMap, agentId: string): string[] {
  const problems = envProblems(env, settings.message_mode, settings, agentId).map((p) => formatEnvProblem(p, '.env'));
  if (settings.agent.id !== agentId) problems.push(`agent.id ${settings.agent.id} does not match AGENT_ID ${agentId}`);
  return problems;
}

/** LOG_LEVEL wins; else DEBUG_MODE or settings.debug_mode turn on debug; else info. undefined when LOG_LEVEL is invalid. */
export function resolveLogLevel(env: EnvMap, settings: Settings | undefined): LogLevel | undefined {
  if (env.LOG_LEVEL !== undefined && env.LOG_LEVEL.trim() !== '') {
    const level = parseLogLevel(env.LOG_LEVEL);
    if (!level) return undefined;
    if (level !== 'info') return level;
  }
  if (/^(1|true|yes|on)$/i.test(env.DEBUG_MODE?.trim() ?? '') || settings?.debug_mode) return 'debug';
  return 'info';
}
