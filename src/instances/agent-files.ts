import { readFileSync } from 'node:fs';
import { AnimusError } from '../core/errors.js';
import { writeFileAtomic } from '../core/fs.js';
import { parseEnv, type EnvMap } from '../config/env-file.js';
import { parseSettingsJson, serializeSettings, type Settings } from '../config/settings.js';
import type { AgentPaths } from '../home/layout.js';

/** Reading and writing an agent's own files, with errors that name the file and the fix. */

export async function readSettings(paths: AgentPaths): Promise<Settings> {
  return parseSettingsJson(await readText(paths.settings, 'EBADSETTINGS'), paths.settings);
}

export async function writeSettings(paths: AgentPaths, settings: Settings): Promise<void> {
  await writeFileAtomic(paths.settings, serializeSettings(settings));
}

export async function readEnvText(paths: AgentPaths): Promise<string> {
  return readText(paths.env, 'EBADENV');
}

export async function readEnv(paths: AgentPaths): Promise<EnvMap> {
  return parseEnv(await readEnvText(paths), paths.env);
}

async function readText(path: string, code: 'EBADENV' | 'EBADSETTINGS'): Promise<string> {
  try {
    // Synchronous: a few hundred bytes, read for every agent by list and health.
    return readFileSync(path, 'utf8');
  } catch (error) {
    const errno = (error as NodeJS.ErrnoException).code;
    if (errno === 'ENOENT') throw new AnimusError(code, `${path} is missing: restore it from a backup or redeploy the agent`, { cause: error });
    throw new AnimusError('EIO', `cannot read ${path} (${errno ?? 'error'}): check its permissions`, { cause: error });
  }
}
