import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { AnimusError } from '../core/errors.js';
import { LOCAL_PROCESS_MANAGERS as PROCESS_MANAGERS, type ProcessManagerName } from './settings.js';
import { importEsm } from '../core/import-esm.js';

/**
 * The operator's defaults for this machine (`animus config`), stored by `conf` in the
 * user's config folder (`ANIMUS_CONFIG_DIR` overrides, which tests use). conf is
 * loaded only when a preference is actually needed.
 */
export interface Preferences {
  /** Default animus home when neither --home nor ANIMUS_HOME is given. */
  home?: string;
  /** Process manager for new agents. */
  processManager?: ProcessManagerName;
  /** Runtime repository new agents clone (URL or path); default: the home's own runtime source. */
  runtimeRepo?: string;
  /** Branch, tag or commit new agents check out. */
  runtimeRef?: string;
}

export type PreferenceKey = keyof Preferences;

interface PreferenceSpec {
  description: string;
  normalize: (value: string) => string;
}

export const PREFERENCE_SPECS: Record<PreferenceKey, PreferenceSpec> = {
  home: { description: 'default animus home', normalize: (value) => resolve(value) },
  processManager: {
    description: `process manager for new agents (${PROCESS_MANAGERS.join(' | ')})`,
    normalize: (value) => {
      if (!(PROCESS_MANAGERS as readonly string[]).includes(value)) {
        throw new AnimusError('EUSAGE', `processManager must be one of ${PROCESS_MANAGERS.join(', ')}, not "${value}"`);
      }
      return value;
    },
  },
  runtimeRepo: {
    description: 'runtime repository new agents clone (URL or path)',
    normalize: (value) => (/^[a-z][a-z0-9+.-]*:\/\//i.test(value) || /^[^/]+@[^:]+:/.test(value) || isAbsolute(value) ? value : resolve(value)),
  },
  runtimeRef: { description: 'branch, tag or commit new agents check out', normalize: (value) => value },
};

export function isPreferenceKey(key: string): key is PreferenceKey {
  return Object.hasOwn(PREFERENCE_SPECS, key);
}

export function assertPreferenceKey(key: string): PreferenceKey {
  if (!isPreferenceKey(key)) {
    throw new AnimusError('EUSAGE', `unknown config key "${key}": use one of ${Object.keys(PREFERENCE_SPECS).join(', ')}`);
  }
  return key;
}

export interface PreferenceStore {
  path: string;
  all(): Preferences;
  get<K extends PreferenceKey>(key: K): Preferences[K];
  set(key: PreferenceKey, value: string): string;
  unset(key: PreferenceKey): void;
}

/** `$ANIMUS_CONFIG_DIR/config.json`, else the XDG config folder's `animus/config.json`. */
export function preferencesPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(preferencesDir(env), 'config.json');
}

function preferencesDir(env: NodeJS.ProcessEnv): string {
  return env.ANIMUS_CONFIG_DIR || join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'animus');
}

/**
 * Reads the preferences without loading conf (and its schema validator): every
 * command that needs the default home or a deploy default goes through here, and
 * start-up time matters. Values were normalized when set; conf writes them.
 */
export async function readPreferences(env: NodeJS.ProcessEnv = process.env): Promise<Preferences> {
  const path = preferencesPath(env);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return {};
    throw new AnimusError('EIO', `cannot read the animus config file ${path} (${(error as NodeJS.ErrnoException).code}): check its permissions`, { cause: error });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw corrupt(path, error);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw corrupt(path, new Error('not an object'));
  const out: Preferences = {};
  for (const [key, value] of Object.entries(data)) if (isPreferenceKey(key) && typeof value === 'string') out[key] = value as never;
  return out;
}

function corrupt(path: string, error: unknown): AnimusError {
  return new AnimusError('EBADSETTINGS', `cannot read the animus config file ${path} (${(error as Error).message}): fix or delete it`, { cause: error });
}

/** The writable store (`animus config set|unset`), through conf: atomic writes, mode 0600. */
export async function openPreferences(env: NodeJS.ProcessEnv = process.env): Promise<PreferenceStore> {
  await readPreferences(env); // the same one-line error for a corrupt file as every other command
  const { default: Conf } = await importEsm<typeof import('conf')>('conf');
  let conf: InstanceType<typeof Conf<Preferences>>;
  try {
    conf = new Conf<Preferences>({ projectName: 'animus', cwd: preferencesDir(env), configFileMode: 0o600 });
  } catch (error) {
    throw corrupt(preferencesPath(env), error);
  }
  return {
    path: conf.path,
    all: () => ({ ...conf.store }),
    get: (key) => conf.get(key),
    set: (key, value) => {
      if (value.trim() === '') throw new AnimusError('EUSAGE', `${key} cannot be empty: use \`animus config unset ${key}\` to go back to the default`);
      const normalized = PREFERENCE_SPECS[key].normalize(value);
      conf.set(key, normalized);
      return normalized;
    },
    unset: (key) => conf.delete(key),
  };
}
