import { statSync, type Stats } from 'node:fs';
import { DB_FILE } from '../home/layout.js';

export const WAL_FILE = `${DB_FILE}-wal`;

/**
 * What health uses of a stat. Kept instead of the Stats object, which in Node 20
 * carries four Dates: at a dozen files per agent and a thousand agents, holding
 * those for the length of a run showed as a third of its time spent in GC.
 */
export interface FileInfo {
  mode: number;
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  directory: boolean;
}

/** undefined when the path does not exist. */
export function statFile(path: string): FileInfo | undefined {
  return fileInfo(statSync(path, { throwIfNoEntry: false }));
}

function fileInfo(info: Stats | undefined): FileInfo | undefined {
  return info && { mode: info.mode, ino: info.ino, size: info.size, mtimeMs: info.mtimeMs, ctimeMs: info.ctimeMs, directory: info.isDirectory() };
}

/** Stats of the files of one agent folder (by path relative to it), each taken once per run. */
export class FolderStats {
  private readonly taken = new Map<string, FileInfo | undefined>();

  constructor(private readonly dir: string) {}

  /**
   * What an lstat of `relative` found, taken as its stat: the same for anything but a
   * link (a link is left for stat to follow, as before). Health's safety look lstats the
   * folder's files anyway; a second syscall for each would tell nothing new.
   */
  seed(relative: string, info: Stats | undefined): void {
    if (this.taken.has(relative) || info?.isSymbolicLink()) return;
    this.taken.set(relative, fileInfo(info));
  }

  get(relative: string): FileInfo | undefined {
    if (this.taken.has(relative)) return this.taken.get(relative);
    // Plain concatenation: `relative` is one of this module's own clean paths, and join's normalizing shows at a thousand agents.
    const info = statFile(relative ? `${this.dir}/${relative}` : this.dir);
    this.taken.set(relative, info);
    return info;
  }
}
