import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ensureHomeDir, writeFileAtomic } from '../core/fs.js';
import { userCacheDir } from '../core/user-cache.js';
import type { TelegramPlugin } from './telegram-check.js';
import type { MessageMode, ProcessManagerName } from '../config/settings.js';
import type { CloneFiles } from '../git/clone-state.js';
import { homeLayout } from '../home/layout.js';
import { VERSION } from '../core/version.js';
import type { DatabaseProbe } from './database-probe.js';
import type { DbPathSetting } from '../instances/db-path.js';
import type { FileInfo } from './folder-stats.js';
import type { CheckResult } from './types.js';

/**
 * What health read from each agent last time, keyed by the identity of the files it
 * came from (inode, size and ctime, much as git keys its index). Nothing can change a
 * file without changing one of those, and ctime cannot be set back, so an agent
 * whose files did not move is not read again: `health` over a thousand mostly idle
 * agents stats their files and reads only those that changed. Three parts per agent:
 * the database probe (the costly one, which changes with every message), the folder
 * reading (settings.json, .env and the clone's .git files, which rarely do), and the
 * names of the files in logs/.
 * Kept in `<home>/.animus/health-cache` (see cachePath for a home made by hand); the agents' folders are never written.
 */
export interface Remembered<T, Key = string> {
  key: Key;
  value: T;
}

/** settings.json, .env and the clone's .git files, as read and judged. */
export interface FolderReading {
  settings: { check: CheckResult; mode?: MessageMode; processManager?: ProcessManagerName; telegram?: TelegramPlugin[] };
  env: CheckResult;
  /** The .env's DB_PATH (where the database is), read with it. */
  dbPath: DbPathSetting;
  /** The clone folder (relative to the agent folder) and its .git files; absent when there is none. */
  clone?: { dir: string; files: CloneFiles; indexTooLarge?: boolean };
}

export interface AgentMemory {
  db?: Remembered<DatabaseProbe>;
  /** Under the identity of every file the reading came from (pushIdentity, in folderInputs' order). */
  folder?: Remembered<FolderReading, Identity>;
  /** The names of the files in logs/ (their sizes are read at every run). */
  logs?: Remembered<string[]>;
}

/**
 * By agent id, what was remembered as JSON text, parsed only when that agent is
 * checked: parsed whole up front, a thousand agents' memories lived through the run
 * as objects, and the GC copied and marked them again and again.
 */
export type HealthCache = Record<string, string>;

/** What was remembered of an agent; undefined when nothing (or something unreadable) was. */
export function recall(cache: HealthCache, id: string): AgentMemory | undefined {
  const text = cache[id];
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as AgentMemory;
  } catch {
    return undefined;
  }
}

/** Adds what was read afresh to what is remembered of the agent. */
export function remember(cache: HealthCache, id: string, memory: AgentMemory): void {
  cache[id] = JSON.stringify({ ...recall(cache, id), ...memory });
}

/**
 * The file: a header line, then one line per agent, `<id> <json>`. JSON text holds no
 * line breaks and ids are agent-<uuid>, so a line splits at its first space. The
 * header names the animus version: what an older animus judged (its checks, its
 * messages) is not served by a newer one, even for files that did not change.
 */
const HEADER = `animus health cache 6 ${VERSION}`;

/**
 * A file changed less than this long before it was read is not remembered: a change
 * within the same clock tick as the read (file times move in ticks of a few ms on
 * Linux, seconds on some file systems) would not move its times. Git calls this the
 * racily clean case and handles it the same way.
 */
export const SETTLE_MS = 2000;

/**
 * `<home>/.animus/health-cache` in a home animus made; in a home made by hand (the
 * guide's, never `init`ed) there is no `.animus/` to keep it in and none is made for
 * it: it lives in the user's cache folder instead ($XDG_CACHE_HOME/animus/health, else
 * ~/.cache/animus/health), one file per home, named by a hash of the home's path.
 */
export function cachePath(home: string, env: NodeJS.ProcessEnv = process.env): string {
  const layout = homeLayout(home);
  if (existsSync(layout.stateDir)) return join(layout.stateDir, 'health-cache');
  return join(userCacheDir(env), 'health', `${createHash('sha256').update(layout.root).digest('hex').slice(0, 24)}.health-cache`);
}


export function loadHealthCache(home: string): HealthCache {
  let text: string;
  try {
    text = readFileSync(cachePath(home), 'utf8');
  } catch {
    return {};
  }
  const lines = text.split('\n');
  const cache: HealthCache = {};
  if (lines[0] !== HEADER) return cache;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const space = line.indexOf(' ');
    if (space > 0) cache[line.slice(0, space)] = line.slice(space + 1);
  }
  return cache;
}

/** Best effort: a home that is not writable (or not animus's) simply gets no cache. */
export async function saveHealthCache(home: string, cache: HealthCache): Promise<void> {
  try {
    if (!existsSync(home)) return;
    const file = cachePath(home);
    // .animus/ (or the user's cache folder): made 0700, never closed again after `systemd install --run-as` opened it to the agents' group.
    await ensureHomeDir(dirname(file));
    const lines = [HEADER];
    for (const [id, text] of Object.entries(cache)) lines.push(`${id} ${text}`);
    await writeFileAtomic(file, `${lines.join('\n')}\n`);
    // The JSON file of animus 0.1's first sessions, no longer read.
    await rm(join(homeLayout(home).stateDir, 'health-cache.json'), { force: true });
  } catch {
    // Nothing to do: the next run reads again.
  }
}

/**
 * A file's identity; `-` when it does not exist. Every change to a file's content,
 * mode or times moves its ctime (to the kernel's clock, which nobody can set back), so
 * inode, size and ctime are enough. A folder only counts as present: its times move
 * with every file created in it, which says nothing about what was read.
 */
export function fileIdentity(info: FileInfo | undefined): string {
  if (!info) return '-';
  if (info.directory) return 'd';
  return `${info.ino}:${info.size}:${info.ctimeMs}`;
}

/**
 * fileIdentity as numbers, IDENTITY_WIDTH per file (inode, size, ctime; a missing file
 * and a folder as MISSING and FOLDER in the first place): compared at every run for a
 * dozen files per agent, and never shown, so no number is turned into text.
 */
export type Identity = number[];

export const IDENTITY_WIDTH = 3;
const MISSING = -1;
const FOLDER = -2;

/** Appends the identity of one file to a key. */
export function pushIdentity(key: Identity, info: FileInfo | undefined): void {
  if (!info) key.push(MISSING, 0, 0);
  else if (info.directory) key.push(FOLDER, 0, 0);
  else key.push(info.ino, info.size, info.ctimeMs);
}

/** Whether the file's identity is the one at `at` in the key (JSON gives each number back as it was written). */
export function isIdentity(key: Identity, at: number, info: FileInfo | undefined): boolean {
  if (!info) return key[at] === MISSING;
  if (info.directory) return key[at] === FOLDER;
  return key[at] === info.ino && key[at + 1] === info.size && key[at + 2] === info.ctimeMs;
}

/** Whether a file held still long enough before `settledBefore` to be remembered (see SETTLE_MS). */
export function isSettled(info: FileInfo | undefined, settledBefore: number): boolean {
  return !info || info.directory || info.ctimeMs < settledBefore;
}

export interface DatabaseKey {
  key: string;
  settled: boolean;
}

/** The identity of a database and its WAL (their stats), and whether both held still (see SETTLE_MS); undefined when the database cannot be stat'ed. */
export function databaseKey(main: FileInfo | undefined, wal: FileInfo | undefined, settledBefore: number): DatabaseKey | undefined {
  if (!main) return undefined;
  // The WAL's ctime moves each time SQLite opens the database, even read-only: its size and mtime carry the
  // writes. An empty WAL (which opening may create) holds nothing: the same as none.
  const written = wal && wal.size > 0 ? wal : undefined;
  return {
    key: `${fileIdentity(main)}|${written ? `${written.ino}:${written.size}:${written.mtimeMs}` : '-'}`,
    settled: main.ctimeMs < settledBefore && (!written || written.mtimeMs < settledBefore),
  };
}
