import { statSync, type Stats } from 'node:fs';
import { DB_FILE } from '../home/layout.js';

export const WAL_FILE = `${DB_FILE}-wal`;

/** Stats of the files of one agent folder (by path relative to it), each taken once per run. */
export class FolderStats {
  private readonly taken = new Map<string, Stats | undefined>();

  constructor(private readonly dir: string) {}

  get(relative: string): Stats | undefined {
    if (this.taken.has(relative)) return this.taken.get(relative);
    // Plain concatenation: `relative` is one of this module's own clean paths, and join's normalizing shows at a thousand agents.
    const info = statSync(relative ? `${this.dir}/${relative}` : this.dir, { throwIfNoEntry: false });
    this.taken.set(relative, info);
    return info;
  }
}

