import type { Database } from 'better-sqlite3';

/**
 * Prepared statements made once per database handle: the runtime stores and claims
 * thousands of items through the same few statements, and preparing is the costly part.
 */
export function preparedFor<S>(prepare: (db: Database) => S): (db: Database) => S {
  const cache = new WeakMap<Database, S>();
  return (db) => {
    let statements = cache.get(db);
    if (!statements) {
      statements = prepare(db);
      cache.set(db, statements);
    }
    return statements;
  };
}
