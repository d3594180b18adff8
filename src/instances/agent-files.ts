import { readAgentText, writeAgentFileAtomic } from '../core/agent-fs.js';
import { AnimusError } from '../core/errors.js';
import { parseEnv, type EnvMap } from '../config/env-file.js';
import { parseSettingsJson, serializeSettings, type Settings } from '../config/settings.js';
import { ENV_FILE, SETTINGS_FILE, type AgentPaths } from '../home/layout.js';

/**
 * Reading and writing an agent's own files, with errors that name the file and the fix.
 * Every read goes through core/agent-fs: a `.env` or `settings.json` that is a symlink
 * (to another agent's `.env`, to /etc/passwd) is refused, never followed.
 */

export async function readSettings(paths: AgentPaths): Promise<Settings> {
  return parseSettingsJson(readText(paths, SETTINGS_FILE, 'EBADSETTINGS'), paths.settings);
}

export async function writeSettings(paths: AgentPaths, settings: Settings): Promise<void> {
  await writeAgentFileAtomic(paths.dir, SETTINGS_FILE, serializeSettings(settings));
}

export async function readEnvText(paths: AgentPaths): Promise<string> {
  return readText(paths, ENV_FILE, 'EBADENV');
}

export async function readEnv(paths: AgentPaths): Promise<EnvMap> {
  return parseEnv(await readEnvText(paths), paths.env);
}

/** Synchronous: a few hundred bytes, read for every agent by list and health. */
function readText(paths: AgentPaths, name: string, code: 'EBADENV' | 'EBADSETTINGS'): string {
  const text = readAgentText(paths.dir, name);
  if (text === undefined) throw new AnimusError(code, `${paths.dir}/${name} is missing: restore it from a backup or redeploy the agent`);
  return text;
}
