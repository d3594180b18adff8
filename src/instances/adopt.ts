import { chmod, copyFile, readdir, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { agentIdFromFolderName, type AgentId } from '../core/agent-id.js';
import { assertAgentPath, ensureAgentDir, isInside } from '../core/agent-fs.js';
import { AnimusError, describeError, isAnimusError } from '../core/errors.js';
import { DIR_MODE, fileMode, formatMode, pathExists, SECRET_FILE_MODE, writeFileAtomic } from '../core/fs.js';
import { parseEnv, setEnvValue, type EnvMap } from '../config/env-file.js';
import { defaultSettings, serializeSettings, validateSettings, MESSAGE_MODES, type MessageMode, type Settings } from '../config/settings.js';
import { cloneRepo } from '../git/repo.js';
import { ensureHome } from '../home/init.js';
import { agentPaths, ENV_FILE, LEGACY_CLONE_DIR, LEGACY_DB_FILE, LOGS_DIR, SETTINGS_FILE, type AgentPaths } from '../home/layout.js';
import { readEnvText } from './agent-files.js';
import { RUNTIME_BRANCH } from '../home/runtime-source.js';
import { openDatabase } from '../store/database.js';
import { schemaVersion, SCHEMA_VERSION } from '../store/migrations.js';
import { snapshotDatabase } from '../store/snapshot.js';
import { checkSettingsAgainstEnv } from '../runtime/config.js';
import { documentedEnvKeys, renderEnv } from './render-env.js';
import { scanAgentFolders } from './registry.js';
import { withAgentLock } from './operation-lock.js';

/**
 * `animus adopt`: takes over agent folders made by hand after the multi-agent guide
 * (a `broca/` clone, `sanctum.db` or `animus.db`, an .env with Broca's names, the
 * guide's nested settings.json). It plans first; with apply it carries the plan out.
 * A database's rows and an .env's values are never changed: the database is copied
 * with SQLite's backup API (the original stays) and migrated additively, the .env
 * only gains missing keys, and the old settings.json is kept beside the new one.
 */
export interface AdoptOptions {
  home: string;
  /** Only these agents; default every agent folder in the home. */
  agents?: AgentId[];
  apply: boolean;
  signal?: AbortSignal;
}

export interface AdoptReport {
  id: string;
  /** Needed (plan) or made (apply). Empty: animus already manages the folder as it is. */
  changes: string[];
  /** What animus will not do by itself and the operator should know. */
  warnings: string[];
  /** Set when the folder cannot be adopted until the operator fixes something. */
  error?: string;
  /** The error's exit code (README's table: 5 for a malformed .env); the command exits with the first. */
  exitCode?: number;
}

interface Step {
  describe: string;
  run: () => Promise<void>;
}

export async function adoptAgents(options: AdoptOptions): Promise<AdoptReport[]> {
  const folders = options.agents
    ? options.agents.map((agent) => ({ name: agent.id, agent }))
    : await scanAgentFolders(options.home);
  const reports: AdoptReport[] = [];
  for (const folder of folders) {
    options.signal?.throwIfAborted();
    const agent = folder.agent ?? agentIdFromFolderName(folder.name);
    if (!agent) {
      reports.push({ id: folder.name, changes: [], warnings: [], error: 'folder name is not agent-<uuid>: rename it to the Letta agent id' });
      continue;
    }
    const paths = agentPaths(options.home, agent);
    reports.push(await adoptOne(options, paths));
  }
  return reports;
}

async function adoptOne(options: AdoptOptions, paths: AgentPaths): Promise<AdoptReport> {
  if (!options.apply) return planAndApply(options, paths);
  // Planned again under the lock: what another command changed meanwhile is seen.
  try {
    return await withAgentLock(paths, { command: 'adopt --apply', signal: options.signal }, () => planAndApply(options, paths));
  } catch (error) {
    if (!isAnimusError(error)) throw error;
    return { id: paths.agent.id, changes: [], warnings: [], error: error.message };
  }
}

async function planAndApply(options: AdoptOptions, paths: AgentPaths): Promise<AdoptReport> {
  const report: AdoptReport = { id: paths.agent.id, changes: [], warnings: [] };
  let steps: Step[];
  try {
    steps = await plan(options, paths, report.warnings);
  } catch (error) {
    return { ...report, error: describeError(error), ...(isAnimusError(error) ? { exitCode: error.exitCode } : {}) };
  }
  for (const step of steps) {
    if (options.apply) {
      try {
        await step.run();
      } catch (error) {
        return { ...report, error: `${step.describe} failed: ${describeError(error)}` };
      }
    }
    report.changes.push(step.describe);
  }
  return report;
}

async function plan(options: AdoptOptions, paths: AgentPaths, warnings: string[]): Promise<Step[]> {
  const steps: Step[] = [];
  if (!(await pathExists(paths.dir))) throw new Error(`no folder ${paths.dir}`);
  // Nothing is read, chmod'ed or written through a link: the folder, .env, settings.json, logs/.
  for (const [name, kind] of [['.', 'dir'], [ENV_FILE, 'file'], [SETTINGS_FILE, 'file'], [LOGS_DIR, 'dir']] as const) assertAgentPath(paths.dir, name, kind);
  const mode = await fileMode(paths.dir);
  if (mode !== DIR_MODE) steps.push({ describe: `set the folder to mode 0700 (was ${formatMode(mode ?? 0)})`, run: () => chmod(paths.dir, DIR_MODE) });

  // .env: parsed strictly; a broken one stops the adoption of this folder, untouched.
  let env: EnvMap = {};
  const hasEnv = await pathExists(paths.env);
  if (hasEnv) {
    env = parseEnv(await readEnvText(paths), paths.env);
    const envMode = await fileMode(paths.env);
    if (envMode !== SECRET_FILE_MODE) steps.push({ describe: `set .env to mode 0600 (was ${formatMode(envMode ?? 0)})`, run: () => chmod(paths.env, SECRET_FILE_MODE) });
    const declared = env.AGENT_ID;
    if (declared === undefined || declared === '') {
      steps.push({ describe: `add AGENT_ID=${paths.agent.id} to .env`, run: async () => writeFileAtomic(paths.env, setEnvValue(await readFile(paths.env, 'utf8'), 'AGENT_ID', paths.agent.id)) });
    } else if (declared.toLowerCase() !== paths.agent.id && declared.toLowerCase() !== paths.agent.uuid) {
      warnings.push(`.env says AGENT_ID=${declared}, but the folder is ${paths.agent.id}: left as is; fix whichever is wrong`);
    }
  } else {
    steps.push({
      describe: 'create .env from the template (AGENT_ID only: add AGENT_ENDPOINT and AGENT_API_KEY)',
      run: async () => writeFileAtomic(paths.env, await renderEnv({ AGENT_ID: paths.agent.id, AGENT_ENDPOINT: '', AGENT_API_KEY: '' }, {})),
    });
  }

  steps.push(...(await planSettings(paths, env, warnings)));
  steps.push(...(await planDatabase(paths, env, warnings)));

  if (!(await pathExists(paths.logs))) steps.push({ describe: 'create logs/', run: async () => void ensureAgentDir(paths.dir, LOGS_DIR) });

  if (!(await pathExists(join(paths.clone, '.git')))) {
    steps.push({
      describe: `clone the animus runtime into runtime/${(await pathExists(join(paths.dir, LEGACY_CLONE_DIR))) ? ' (broca/ is left in place)' : ''}`,
      run: async () => {
        const layout = await ensureHome(options.home);
        await cloneRepo({ repo: layout.runtimeRepo, dest: paths.clone, ref: RUNTIME_BRANCH, signal: options.signal });
      },
    });
  }
  if (await pathExists(join(paths.dir, LEGACY_CLONE_DIR))) {
    warnings.push('stop the Python Broca process of this agent before starting it with animus: both would answer the same chats');
  }
  return steps;
}

async function planSettings(paths: AgentPaths, env: EnvMap, warnings: string[]): Promise<Step[]> {
  const broca = await readBrocaFolder(paths);
  const unused = await unusedEnvKeys(env);
  if (unused.length > 0) warnings.push(`.env variables the animus runtime does not read (left in .env, no effect): ${unused.join(', ')}`);
  const missing = (settings: Settings) => {
    const problems = checkSettingsAgainstEnv(settings, { ...env, AGENT_ID: env.AGENT_ID || paths.agent.id }, paths.agent.id);
    if (problems.length > 0) warnings.push(`the adopted agent will not start until .env is fixed: ${problems.join('; ')}`);
  };
  if (!(await pathExists(paths.settings))) {
    const { settings, dropped } = convertLegacySettings({}, paths, env, broca);
    reportDropped(dropped, warnings, false);
    missing(settings);
    return [{ describe: `create settings.json (message_mode ${settings.message_mode}${describePlugins(settings)})`, run: () => writeFileAtomic(paths.settings, serializeSettings(settings)) }];
  }
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(paths.settings, 'utf8'));
  } catch (error) {
    throw new Error(`settings.json is not valid JSON (${describeError(error)}): fix it, or delete it to have animus create one`);
  }
  try {
    const settings = validateSettings(raw, 'settings.json');
    if (settings.agent.id !== paths.agent.id) warnings.push(`settings.json names ${settings.agent.id}, not ${paths.agent.id}: left as is`);
    missing(settings);
    const mode = await fileMode(paths.settings);
    return mode === SECRET_FILE_MODE ? [] : [{ describe: 'set settings.json to mode 0600', run: () => chmod(paths.settings, SECRET_FILE_MODE) }];
  } catch (error) {
    if (!isAnimusError(error)) throw error;
  }
  const { settings, dropped } = convertLegacySettings(raw, paths, env, broca);
  reportDropped(dropped, warnings, true);
  missing(settings);
  return [
    {
      describe: `rewrite settings.json in animus's schema, keeping its values and Broca's behaviour (${describePlugins(settings).slice(2) || 'no plugin'}); the original is kept as settings.json.pre-adopt`,
      run: async () => {
        await copyFile(paths.settings, `${paths.settings}.pre-adopt`);
        await chmod(`${paths.settings}.pre-adopt`, SECRET_FILE_MODE);
        await writeFileAtomic(paths.settings, serializeSettings(settings));
      },
    },
  ];
}

function reportDropped(dropped: string[], warnings: string[], kept: boolean): void {
  if (dropped.length > 0) warnings.push(`not carried over (animus has no equivalent${kept ? '; kept in settings.json.pre-adopt' : ''}): ${dropped.join('; ')}`);
}

function describePlugins(settings: Settings): string {
  const bot = settings.plugins.telegram_bot;
  const parts = [
    ...(bot.enabled ? [`Telegram bot on, ${bot.require_owner ? 'owner-only' : 'answering anyone'}, parse_mode ${bot.parse_mode}`] : []),
    ...(settings.plugins.telegram_user.enabled ? ['Telegram user account on'] : []),
    ...(settings.letta.attach_user_block ? ['per-user memory on'] : []),
  ];
  return parts.length > 0 ? `; ${parts.join(', ')}` : '';
}

/**
 * What the Broca folder runs (read from Broca 3's code, see shared/README): plugins
 * are loaded by folder presence under `broca/plugins/` (no `enabled` switch; the
 * Telethon user plugin ships in `plugins-disabled/`). Without a Broca clone to look
 * at, the .env decides: a bot token means the bot ran.
 */
export interface BrocaFolder {
  /** Plugin folders under broca/plugins/, or undefined when there is none to read. */
  plugins: Set<string> | undefined;
}

async function readBrocaFolder(paths: AgentPaths): Promise<BrocaFolder> {
  const entries = await readdir(join(paths.dir, LEGACY_CLONE_DIR, 'plugins'), { withFileTypes: true }).catch(() => undefined);
  return { plugins: entries ? new Set(entries.filter((e) => e.isDirectory()).map((e) => e.name)) : undefined };
}

async function planDatabase(paths: AgentPaths, env: EnvMap, warnings: string[]): Promise<Step[]> {
  const steps: Step[] = [];
  // Broca's DB_PATH becomes animus's layout: the database is animus.db, and DB_PATH is
  // commented out so that the runtime and every command agree on it (instances/db-path).
  const brocaDb = brocaDbPath(paths, env.DB_PATH);
  if (brocaDb !== undefined) {
    steps.push({
      describe: `comment out DB_PATH=${env.DB_PATH} in .env: the database is animus.db (the original .env is kept as .env.pre-adopt)`,
      run: async () => {
        const text = await readFile(paths.env, 'utf8');
        await copyFile(paths.env, `${paths.env}.pre-adopt`);
        await chmod(`${paths.env}.pre-adopt`, SECRET_FILE_MODE);
        await writeFileAtomic(paths.env, commentOut(text, 'DB_PATH', 'animus adopt: the database is animus.db'));
      },
    });
  }
  if (await pathExists(paths.db)) {
    if (brocaDb && brocaDb !== paths.db && (await pathExists(brocaDb))) {
      warnings.push(`.env's DB_PATH names ${brocaDb.slice(paths.dir.length + 1)} but animus.db exists too: animus uses animus.db; the other file is left as is`);
    }
    const db = openDatabase(paths.db, { readonly: true });
    let version: number;
    try {
      db.pragma('quick_check');
      version = schemaVersion(db);
    } finally {
      db.close();
    }
    if (version >= SCHEMA_VERSION) return steps;
    return [...steps, { describe: `migrate animus.db from schema ${version} to ${SCHEMA_VERSION} (adds columns and indexes; no row changes)`, run: migrateInPlace(paths.db) }];
  }
  const candidates = [...(brocaDb ? [brocaDb] : []), join(paths.dir, LEGACY_DB_FILE), join(paths.dir, LEGACY_CLONE_DIR, LEGACY_DB_FILE)];
  for (const candidate of candidates) {
    if (!(await pathExists(candidate))) continue;
    assertAgentPath(paths.dir, candidate.slice(paths.dir.length + 1));
    const relative = candidate.slice(paths.dir.length + 1);
    // Fails here, at plan time, on a corrupt file: nothing is changed for this agent.
    openDatabase(candidate, { readonly: true }).close();
    return [
      ...steps,
      {
        describe: `copy ${relative} into animus.db with SQLite's online backup (${relative} is left as is) and migrate it to schema ${SCHEMA_VERSION}`,
        run: async () => {
          await snapshotDatabase(candidate, paths.db);
          await migrateInPlace(paths.db)();
        },
      },
    ];
  }
  return [...steps, { describe: 'create animus.db', run: migrateInPlace(paths.db, true) }];
}

/**
 * The file a Broca DB_PATH names, inside the folder: Broca resolves it from its working
 * directory, which the guide makes the agent folder or its `broca/` clone, so an existing
 * file in either wins. undefined without DB_PATH; refused (the folder is not adopted)
 * when it leaves the folder: that data may be another agent's.
 */
function brocaDbPath(paths: AgentPaths, setting: string | undefined): string | undefined {
  if (setting === undefined || setting.trim() === '') return undefined;
  const value = setting.trim();
  const candidates = isAbsolute(value) ? [resolve(value)] : [resolve(paths.dir, value), resolve(paths.dir, LEGACY_CLONE_DIR, value)];
  const inside = candidates.filter((c) => isInside(paths.dir, c));
  if (inside.length === 0) {
    throw new AnimusError('EBADENV', `DB_PATH=${value} in .env is outside the agent folder: copy that database into ${paths.db} yourself (if it is this agent's), remove DB_PATH, and adopt again`);
  }
  return inside.find((c) => existsSync(c)) ?? inside[0];
}

function commentOut(text: string, key: string, why: string): string {
  return text
    .split('\n')
    .map((line) => (new RegExp(`^\\s*(?:export\\s+)?${key}\\s*=`).test(line) ? `# ${line.trim()}  # ${why}` : line))
    .join('\n');
}

function migrateInPlace(path: string, create = false): () => Promise<void> {
  return async () => {
    openDatabase(path, { create }).close();
    await chmod(path, SECRET_FILE_MODE);
  };
}

/** Broca parses TELEGRAM_REQUIRE_OWNER as `true|1|yes` (any case) and defaults it to true. */
function brocaRequiresOwner(env: EnvMap): boolean {
  const value = env.TELEGRAM_REQUIRE_OWNER?.trim();
  return value === undefined || value === '' ? true : ['true', '1', 'yes'].includes(value.toLowerCase());
}

/** The guide's .env settings, carried into settings.json. */
const SETTINGS_IN_ENV = ['MESSAGE_MODE', 'QUEUE_REFRESH', 'MAX_RETRIES'];

/** .env variables the animus runtime does not read (Broca's TELEGRAM_BUFFER_DELAY, ENABLE_IMAGE_HANDLING, …): left in .env, named in the plan. */
async function unusedEnvKeys(env: EnvMap): Promise<string[]> {
  const documented = await documentedEnvKeys();
  return Object.keys(env).filter((key) => !documented.has(key) && !SETTINGS_IN_ENV.includes(key) && !key.startsWith('ANIMUS_'));
}

/**
 * Maps the guide's nested form and Broca's flat form onto animus's schema, keeping
 * what the Broca folder did: the plugins it loaded run (the bot when it has a token),
 * the bot stays owner-only unless TELEGRAM_REQUIRE_OWNER turned that off, its
 * parse_mode is kept, and per-user memory is on (Broca always attaches a block per
 * user). The guide's `plugins.telegram` is the bot (it has a parse_mode); Broca's
 * Telethon plugin is `telegram_user`. The guide's .env may carry MESSAGE_MODE,
 * QUEUE_REFRESH, MAX_RETRIES and DEBUG_MODE; settings.json wins over them.
 * `dropped` names every value that could not be carried over, and why.
 */
export function convertLegacySettings(raw: unknown, paths: AgentPaths, env: EnvMap, broca: BrocaFolder = { plugins: undefined }): { settings: Settings; dropped: string[] } {
  const source = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, any>;
  const settings = defaultSettings({ agentId: paths.agent.id });
  const dropped: string[] = [];
  const take = <T>(value: unknown, check: (v: unknown) => boolean, set: (v: T) => void, name: string) => {
    if (value === undefined) return;
    if (check(value)) set(value as T);
    else dropped.push(`${name}=${JSON.stringify(value)} (invalid)`);
  };
  const isMode = (v: unknown) => typeof v === 'string' && (MESSAGE_MODES as readonly string[]).includes(v.toLowerCase());
  const isCount = (v: unknown) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 100;
  const isPositive = (v: unknown) => typeof v === 'number' && v >= 0.05 && v <= 3600;
  const number = (text: string | undefined) => (text === undefined || text.trim() === '' ? undefined : Number(text));
  take<string>(env.MESSAGE_MODE, isMode, (v) => (settings.message_mode = v.toLowerCase() as MessageMode), '.env MESSAGE_MODE');
  take<number>(number(env.QUEUE_REFRESH), isPositive, (v) => (settings.queue_refresh = v), '.env QUEUE_REFRESH');
  take<number>(number(env.MAX_RETRIES), isCount, (v) => (settings.max_retries = v), '.env MAX_RETRIES');
  if (env.DEBUG_MODE) settings.debug_mode = /^(1|true|yes|on)$/i.test(env.DEBUG_MODE);

  const processing = (source.message_processing ?? {}) as Record<string, unknown>;
  take<string>(source.message_mode ?? processing.mode, isMode, (v) => (settings.message_mode = v.toLowerCase() as MessageMode), 'message_mode');
  take<number>(source.queue_refresh ?? processing.queue_refresh, isPositive, (v) => (settings.queue_refresh = v), 'queue_refresh');
  take<number>(source.max_retries ?? processing.max_retries, isCount, (v) => (settings.max_retries = v), 'max_retries');
  take<boolean>(source.debug_mode, (v) => typeof v === 'boolean', (v) => (settings.debug_mode = v), 'debug_mode');
  for (const key of Object.keys(processing)) if (!['mode', 'queue_refresh', 'max_retries'].includes(key)) dropped.push(`message_processing.${key}`);
  if (typeof source.agent?.name === 'string') settings.agent.name = source.agent.name;
  if (typeof source.agent?.description === 'string') settings.agent.description = source.agent.description;
  // Broca keeps a Letta identity and a "human" block per user and attaches it around each request.
  settings.letta.attach_user_block = true;

  const token = env.TELEGRAM_BOT_TOKEN?.trim() ?? '';
  const plugins = (source.plugins ?? {}) as Record<string, any>;
  let botNamed = false;
  for (const [name, config] of Object.entries(plugins)) {
    if (name === 'telegram_bot' || name === 'telegram') {
      botNamed = true;
      if (config?.enabled === false) dropped.push(`plugins.${name}.enabled=false (Broca has no such switch and ran the bot; it stays on: \`animus settings set --agent ${paths.agent.id} plugins.telegram_bot.enabled false\` turns it off)`);
      const parse = config?.parse_mode;
      if (parse !== undefined) {
        const known = ['Markdown', 'MarkdownV2', 'HTML'].find((m) => typeof parse === 'string' && m.toLowerCase() === parse.toLowerCase());
        if (known) settings.plugins.telegram_bot.parse_mode = known as Settings['plugins']['telegram_bot']['parse_mode'];
        else dropped.push(`plugins.${name}.parse_mode=${JSON.stringify(parse)} (invalid)`);
      }
      for (const key of Object.keys(config ?? {})) if (!['enabled', 'parse_mode'].includes(key)) dropped.push(`plugins.${name}.${key}`);
    } else if (name === 'telegram_user') {
      settings.plugins.telegram_user.enabled = config?.enabled !== false;
    } else if (name === 'local') {
      settings.plugins.local.enabled = config?.enabled !== false;
    } else {
      dropped.push(`plugins.${name}`);
    }
  }
  // The bot ran in Broca when its plugin folder was there (or, with no clone to read, when named or given a token) and it had a token.
  const botLoaded = broca.plugins ? broca.plugins.has('telegram_bot') : botNamed || token !== '';
  if (botLoaded && token !== '') {
    settings.plugins.telegram_bot.enabled = true;
    settings.plugins.telegram_bot.require_owner = brocaRequiresOwner(env);
  } else if (botLoaded) dropped.push('the Telegram bot (no TELEGRAM_BOT_TOKEN in .env, so Broca could not run it either): it stays off');
  if (broca.plugins?.has('telegram')) settings.plugins.telegram_user.enabled = true;

  const known = new Set(['agent', 'message_processing', 'message_mode', 'queue_refresh', 'max_retries', 'debug_mode', 'plugins']);
  for (const key of Object.keys(source)) if (!known.has(key)) dropped.push(key);
  for (const key of Object.keys(source.agent ?? {})) if (!['id', 'name', 'description'].includes(key)) dropped.push(`agent.${key}`);
  return { settings: validateSettings(settings, 'converted settings'), dropped };
}
