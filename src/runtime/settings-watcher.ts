import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { describeError, isAnimusError } from '../core/errors.js';
import { parseSettingsJson, type Settings } from '../config/settings.js';

/**
 * Hot reload of settings.json. Writers replace the file by atomic rename, which ends
 * a watch on the file itself, so the folder is watched (plus a slow poll in case the
 * watch misses an event, e.g. on network filesystems). A new file that does not
 * validate is refused and the old settings stay in force.
 */
export interface SettingsWatcherOptions {
  path: string;
  pollMs: number;
  /** Extra checks against the environment (a live mode without a key); problems refuse the change. */
  check: (settings: Settings) => string[];
  onChange: (next: Settings) => void | Promise<void>;
  onRejected: (problems: string[]) => void;
}

export class SettingsWatcher {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private signature = '';
  private checking: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly options: SettingsWatcherOptions) {}

  async start(): Promise<void> {
    this.signature = await this.readSignature();
    const name = basename(this.options.path);
    try {
      this.watcher = watch(dirname(this.options.path), { persistent: false }, (_event, filename) => {
        if (filename === null || filename.toString() === name) this.schedule();
      });
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch {
      // The poll below still sees changes.
    }
    this.timer = setInterval(() => this.schedule(), this.options.pollMs);
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    this.watcher?.close();
    clearInterval(this.timer);
    clearTimeout(this.debounce);
  }

  /** Checks now (tests and SIGHUP); resolves once any change was applied or refused. */
  check(): Promise<void> {
    this.checking = this.checking.then(() => this.compare());
    return this.checking;
  }

  private schedule(): void {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.check(), 30);
  }

  private async compare(): Promise<void> {
    if (this.closed) return;
    const signature = await this.readSignature();
    if (signature === this.signature || signature === '') return;
    this.signature = signature;
    let next: Settings;
    try {
      next = parseSettingsJson(await readFile(this.options.path, 'utf8'), 'settings.json');
    } catch (error) {
      const problems = isAnimusError(error) ? ((error.detail?.problems as string[] | undefined) ?? [describeError(error)]) : [describeError(error)];
      this.options.onRejected(problems);
      return;
    }
    const problems = this.options.check(next);
    if (problems.length > 0) {
      this.options.onRejected(problems);
      return;
    }
    await this.options.onChange(next);
  }

  private async readSignature(): Promise<string> {
    try {
      const info = await stat(this.options.path);
      return `${info.ino}:${info.size}:${info.mtimeMs}`;
    } catch {
      return '';
    }
  }
}
