import type { Database } from 'better-sqlite3';
import { parseAgentId } from '../core/agent-id.js';
import { AnimusError, describeError, isAnimusError } from '../core/errors.js';
import { parseEnv } from '../config/env-file.js';
import { validateSettings } from '../config/settings.js';
import { BROCA_TABLES, type BrocaTable } from './archive-format.js';

/**
 * What makes an archive restorable, checked the same way by `backup` (on what it is
 * about to archive) and by `verify` and `restore` (on what they extracted): a backup
 * that prints ✓ is one that verify and restore accept.
 *
 * - The database holds Broca's four tables (a 0-byte file or a SQLite file of
 *   something else is not an agent's database).
 * - .env and settings.json, when present, do not name another agent.
 * - A settings.json that is not animus's schema (the guide's nested form, a broken
 *   edit) or a .env animus cannot parse is archived and restored as it was, with a
 *   note saying what to run: refusing the backup would leave the database unsaved.
 */

/** Row counts of Broca's four tables; EBADDB naming the missing ones. */
export function countBrocaRows(db: Database, source: string): Record<BrocaTable, number> {
  const present = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map((row) => row.name));
  const missing = BROCA_TABLES.filter((table) => !present.has(table));
  if (missing.length > 0) {
    const what = missing.length === BROCA_TABLES.length ? "none of Broca's tables" : `no ${missing.join(', ')} table${missing.length > 1 ? 's' : ''}`;
    throw new AnimusError('EBADDB', `${source} has ${what}: it is not an agent's database`);
  }
  return Object.fromEntries(BROCA_TABLES.map((table) => [table, (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n])) as Record<BrocaTable, number>;
}

/** The agent a settings.json or .env names, normalized; undefined when it names none. */
function namedAgent(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  try {
    return parseAgentId(value.trim()).id;
  } catch {
    return value.trim();
  }
}

/**
 * Checks an agent's .env and settings.json text against the agent they belong to.
 * Throws (exit 5) when either names another agent; returns notes for files that will
 * be archived or restored as they are although animus cannot use them yet.
 */
export function checkAgentConfig(agentId: string, files: { env?: string; settings?: string }, where: string): string[] {
  const notes: string[] = [];
  if (files.settings !== undefined) {
    let raw: unknown;
    try {
      raw = JSON.parse(files.settings);
    } catch (error) {
      notes.push(`settings.json${where} is not valid JSON (${describeError(error)}): kept as it is; fix it after a restore`);
    }
    if (raw !== undefined) {
      const named = namedAgent((raw as { agent?: { id?: unknown } } | null)?.agent?.id);
      if (named !== undefined && named !== agentId) {
        throw new AnimusError('EBADSETTINGS', `settings.json${where} names ${named.slice(0, 60)}, not ${agentId}: fix its agent.id (or restore it from the agent's own archive)`);
      }
      try {
        validateSettings(raw, 'settings.json');
      } catch (error) {
        if (!isAnimusError(error)) throw error;
        notes.push(`settings.json${where} is not in animus's schema (${error.message.replace(/^settings\.json: /, '')}): kept as it is; run \`animus adopt --apply\` to convert it`);
      }
    }
  }
  if (files.env !== undefined) {
    try {
      const named = namedAgent(parseEnv(files.env, '.env').AGENT_ID);
      if (named !== undefined && named !== agentId) {
        throw new AnimusError('EBADENV', `.env${where} has AGENT_ID of another agent, not ${agentId}: fix AGENT_ID (or restore it from the agent's own archive)`);
      }
    } catch (error) {
      if (!isAnimusError(error) || error.code !== 'EBADENV' || /another agent/.test(error.message)) throw error;
      notes.push(`.env${where} cannot be parsed (${error.message.replace(/^\.env /, '')}): kept as it is; fix it after a restore`);
    }
  }
  return notes;
}
