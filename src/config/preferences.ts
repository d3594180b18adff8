import { isAbsolute, resolve } from 'node:path';
import { AnimusError } from '../core/errors.js';
import { PROCESS_MANAGERS, type ProcessManagerName } from './settings.js';

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

const stores = new Map<string, Promise<PreferenceStore>>();

/** One store per config folder per process: deploy asks for three preferences, conf is read once. */
export function openPreferences(env: NodeJS.ProcessEnv = process.env): Promise<PreferenceStore> {
  const key = env.ANIMUS_CONFIG_DIR ?? '';
  let store = stores.get(key);
  if (!store) {
    store = loadPreferences(env);
    stores.set(key, store);
    store.catch(() => stores.delete(key));
  }
  return store;
}

async function loadPreferences(env: NodeJS.ProcessEnv): Promise<PreferenceStore> {
  const { default: Conf } = await import('conf');
  let conf: InstanceType<typeof Conf<Preferences>>;
  try {
    conf = new Conf<Preferences>({ projectName: 'animus', projectSuffix: '', cwd: env.ANIMUS_CONFIG_DIR || undefined, configFileMode: 0o600 });
  } catch (error) {
    throw new AnimusError('EBADSETTINGS', `cannot read the animus config file (${(error as Error).message}): fix or delete it`, { cause: error });
  }
  return {
    path: conf.path,
    all: () => ({ ...conf.store }),
    get: (key) => conf.get(key),
    set: (key, value) => {
      const normalized = PREFERENCE_SPECS[key].normalize(value);
      conf.set(key, normalized);
      return normalized;
    },
    unset: (key) => conf.delete(key),
  };
}
