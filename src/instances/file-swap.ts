import { existsSync, lstatSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { isInside, statAgentPath } from '../core/agent-fs.js';
import { AnimusError, describeError } from '../core/errors.js';
import { DIR_MODE, writeFileAtomic } from '../core/fs.js';
import { notice } from '../core/notices.js';
import { homeLayout, type AgentPaths } from '../home/layout.js';
import { lockHolder, swapJournalOf } from './operation-lock.js';

/**
 * A swap of an agent's files (restore's: the current database, .env, settings.json and
 * audit trail renamed aside, the proven ones renamed into place) that a process killed
 * in the middle cannot leave half-done: a database restored beside an old .env.
 *
 * Before the first rename the whole plan is written to a journal beside the agent's
 * lock (`<home>/.animus/locks/<id>.swap.json`, animus's own folder, never the agent's),
 * made durable, and after each rename the journal records how far it got. A journal
 * that is still there names a swap whose process died: the next command that takes the
 * agent's lock (operation-lock.ts) finishes it when every file still to be moved in is
 * there (the staging folder of the killed restore), and otherwise moves everything back
 * to how it was; then removes the journal. Each step is a rename, so each file is
 * either the old one or the new one, and the recovery can tell which from the disk.
 */

export interface FileMove {
  /** `aside`: a current file to its kept name; `install`: a proven file from staging into place. */
  kind: 'aside' | 'install';
  from: string;
  to: string;
}

interface Journal {
  format: 1;
  agent: string;
  /** What the swap is, for the message of whoever finishes or undoes it: `restore`. */
  label: string;
  /** Where the files come from: the archive. */
  source?: string;
  pid: number;
  since: string;
  moves: FileMove[];
  /** Moves known done (the one after may be done too: the process can die between its rename and the journal's update). */
  done: number;
  /** Kept files removed once the swap is whole (a recreated agent has nothing worth keeping). */
  discard: string[];
}

export interface SwapOptions {
  label: string;
  source?: string;
  discard?: string[];
}

/**
 * Performs the moves in order, journaled. A move that fails puts back what was done
 * (and throws); a process killed meanwhile leaves the journal for recoverSwap.
 */
export async function swapAgentFiles(paths: AgentPaths, moves: FileMove[], options: SwapOptions): Promise<void> {
  const file = swapJournalOf(paths);
  const journal: Journal = { format: 1, agent: paths.agent.id, label: options.label, ...(options.source ? { source: options.source } : {}), pid: process.pid, since: new Date().toISOString(), moves, done: 0, discard: options.discard ?? [] };
  checkJournal(paths, journal);
  // Made 0700 when missing, as the lock makes it (and never chmod'ed: see operation-lock.ts).
  await mkdir(dirname(file), { recursive: true, mode: DIR_MODE });
  await writeJournal(file, journal);
  try {
    for (const move of moves) {
      await rename(move.from, move.to);
      journal.done++;
      await writeJournal(file, journal);
    }
  } catch (error) {
    await undo(journal, journal.done).catch(() => {});
    await removeJournal(file);
    throw new AnimusError('EIO', `${options.label} of ${paths.agent.id} failed while moving files (${describeError(error)}); the previous files were put back`, { cause: error });
  }
  await finish(journal, file);
}

/**
 * Finishes or undoes the swap a killed process left (see above); nothing when there is
 * no journal. Says what it did through core/notices and returns it.
 */
export async function recoverSwap(paths: AgentPaths): Promise<string | undefined> {
  const file = swapJournalOf(paths);
  const journal = await readJournal(paths, file);
  if (!journal) return undefined;
  const who = `the ${journal.label} of ${paths.agent.id}${journal.source ? ` from ${journal.source}` : ''} (pid ${journal.pid}, since ${journal.since}) was interrupted`;
  if (!existsSync(paths.dir)) {
    await removeJournal(file);
    return undefined;
  }
  try {
    // The move after the last recorded one may have happened before the process died.
    let done = Math.min(journal.done, journal.moves.length);
    if (done < journal.moves.length && isDone(journal.moves[done]!)) done++;
    const rest = journal.moves.slice(done);
    let message: string;
    // Finished when everything still to move is there; each target is freed by the move before it.
    if (rest.every((move) => present(move.from))) {
      for (const move of rest) await rename(move.from, move.to);
      journal.done = journal.moves.length;
      await finish(journal, file);
      message = `${who} after it had verified everything: its remaining files were moved into place`;
    } else {
      await undo(journal, done);
      await removeJournal(file);
      message = `${who} and could not be finished (its staged files are gone): the agent has its files from before again; run the ${journal.label} again`;
    }
    notice(message);
    return message;
  } catch (error) {
    throw new AnimusError('EIO', `${who}, and its files could not be put in order (${describeError(error)}): see ${file} for what it was moving`, { cause: error });
  }
}

/**
 * A swap a killed command left, in the words read-only commands (status, health) show:
 * they never finish it themselves, as they write nothing. Undefined when there is none,
 * or when the lock's holder is alive (the swap is going on).
 */
export async function interruptedSwap(paths: AgentPaths): Promise<string | undefined> {
  const file = swapJournalOf(paths);
  if (!existsSync(file) || (await lockHolder(paths))) return undefined;
  let journal: Journal | undefined;
  try {
    journal = await readJournal(paths, file);
  } catch (error) {
    return describeError(error);
  }
  if (!journal) return undefined;
  const id = paths.agent.id;
  return `the ${journal.label} of ${id} (pid ${journal.pid}, since ${journal.since}) was interrupted half-way: the next command that changes the agent finishes or undoes it first (for example \`animus start ${id}\`)`;
}

/** Undoes the first `done` moves, last first: a file moved in is removed, a file moved aside comes back. */
async function undo(journal: Journal, done: number): Promise<void> {
  for (const move of journal.moves.slice(0, done).reverse()) {
    if (move.kind === 'install') await rm(move.to, { force: true });
    else if (present(move.to) && !present(move.from)) await rename(move.to, move.from);
  }
}

async function finish(journal: Journal, file: string): Promise<void> {
  // The renames are on disk before the journal that describes them goes away.
  for (const dir of new Set(journal.moves.map((move) => dirname(move.to)))) await syncDir(dir);
  await removeJournal(file);
  for (const kept of journal.discard) await rm(kept, { force: true });
}

function isDone(move: FileMove): boolean {
  return !present(move.from) && present(move.to);
}

/** Whether a name exists (a link counts as itself: nothing here follows one). */
function present(path: string): boolean {
  return lstatSync(path, { throwIfNoEntry: false }) !== undefined;
}

async function writeJournal(file: string, journal: Journal): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(journal)}\n`);
  await syncDir(dirname(file));
}

async function removeJournal(file: string): Promise<void> {
  await rm(file, { force: true });
  await syncDir(dirname(file)).catch(() => {});
}

async function readJournal(paths: AgentPaths, file: string): Promise<Journal | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new AnimusError('EIO', `cannot read ${file}: ${describeError(error)}`, { cause: error });
  }
  let journal: Journal;
  try {
    journal = JSON.parse(text) as Journal;
    checkJournal(paths, journal);
  } catch (error) {
    throw new AnimusError('EBADDB', `${file} is not a swap journal animus wrote (${describeError(error)}): an interrupted restore of ${paths.agent.id} cannot be finished from it; look at the agent's *.pre-restore-* files, then remove it`, { cause: error });
  }
  return journal;
}

/**
 * Every name a journal moves stays where a swap may touch: an agent's own files inside
 * its folder, reached through no link, and staged files inside the home's staging area.
 */
function checkJournal(paths: AgentPaths, journal: Journal): void {
  const bad = (why: string) => new Error(why);
  if (journal.format !== 1 || journal.agent !== paths.agent.id || !Array.isArray(journal.moves) || !Array.isArray(journal.discard) || !Number.isInteger(journal.done)) throw bad('not a journal of this agent');
  // What its messages show: text without control characters.
  for (const text of [journal.label, journal.since, journal.source ?? '']) if (typeof text !== 'string' || /[\u0000-\u001f\u007f-\u009f]/.test(text)) throw bad('unreadable text');
  if (!Number.isInteger(journal.pid)) throw bad('no pid');
  const staging = homeLayout(dirname(paths.dir)).stagingDir;
  const inAgent = (path: unknown) => {
    if (typeof path !== 'string' || !path.startsWith(`${paths.dir}/`) || resolve(path) !== path || !isInside(paths.dir, path)) throw bad(`${String(path)} is not in the agent folder`);
    const parent = dirname(path).slice(paths.dir.length + 1);
    if (parent !== '' && statAgentPath(paths.dir, parent).kind !== 'dir') throw bad(`${dirname(path)} is not a folder of the agent`);
  };
  for (const move of journal.moves) {
    if (move.kind === 'install') {
      if (typeof move.from !== 'string' || !isInside(staging, move.from)) throw bad(`${String(move.from)} is not in the staging area`);
    } else if (move.kind === 'aside') inAgent(move.from);
    else throw bad('unknown move');
    inAgent(move.to);
  }
  journal.discard.forEach(inAgent);
}

/** fsync of a folder: the renames in it reach the disk. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
