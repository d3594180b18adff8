import { closeSync, constants, fstatSync, openSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isoTime } from '../core/time.js';

/**
 * What a running runtime knows about itself that is neither in its database nor in its
 * process manager (the Telegram poller's last answer, a webhook in the way, an approval
 * the agent waits for, the Letta endpoint refusing the key). Each concern owns one
 * section of `<agent>/runtime-state.json`; `health` and `status` read it. The file is
 * the runtime's to write (0600, replaced atomically, never followed through a symlink)
 * and a reader's to trust only as far as `updatedAt` and the runtime's pid go.
 */
export const RUNTIME_STATE_FILE = 'runtime-state.json';

export type SectionStatus = 'ok' | 'warn' | 'error';

export interface RuntimeSection {
  status: SectionStatus;
  /** One line for people: what is wrong and how to fix it, or what is fine. */
  message: string;
  /** When this section last changed (ISO). */
  at: string;
  /** Anything else the concern wants health to show (no secrets). */
  [field: string]: unknown;
}

export interface RuntimeState {
  format: 1;
  pid: number;
  updatedAt: string;
  sections: Record<string, RuntimeSection>;
}

const MAX_BYTES = 256 * 1024;

/** Keeps the sections in memory and rewrites the file only when one of them changed. */
export class RuntimeStateWriter {
  private readonly sections: Record<string, RuntimeSection> = {};
  private readonly path: string;
  private writes = 0;

  constructor(private readonly agentDir: string, private readonly onError: (error: unknown) => void = () => {}) {
    this.path = join(agentDir, RUNTIME_STATE_FILE);
  }

  /** Sets a section; `at` is kept while status and fields stay the same, so polling writes nothing. */
  set(name: string, section: Omit<RuntimeSection, 'at'>): void {
    const previous = this.sections[name];
    const { at: _at, ...rest } = previous ?? ({} as Partial<RuntimeSection>);
    if (previous && JSON.stringify(rest) === JSON.stringify(section)) return;
    this.sections[name] = { ...section, at: isoTime() } as RuntimeSection;
    this.flush();
  }

  get(name: string): RuntimeSection | undefined {
    return this.sections[name];
  }

  clear(name: string): void {
    if (!(name in this.sections)) return;
    delete this.sections[name];
    this.flush();
  }

  /** The runtime stopped: nothing it said still holds. */
  remove(): void {
    rmSync(this.path, { force: true });
  }

  private flush(): void {
    const state: RuntimeState = { format: 1, pid: process.pid, updatedAt: isoTime(), sections: this.sections };
    // A fresh name with O_EXCL never opens an existing file or link; rename replaces a
    // link planted at the target instead of writing through it.
    // (pid and a counter make the name fresh; O_EXCL refuses anything already there, so no random bytes and no crypto module.)
    const temp = join(this.agentDir, `.${RUNTIME_STATE_FILE}.${process.pid}.${++this.writes}.tmp`);
    try {
      writeFileSync(temp, `${JSON.stringify(state)}\n`, { mode: 0o600, flag: 'wx' });
      renameSync(temp, this.path);
    } catch (error) {
      rmSync(temp, { force: true });
      this.onError(error);
    }
  }
}

/** The state a runtime last recorded in an agent folder; undefined when absent, not a regular file, or unreadable. */
export function readRuntimeState(agentDir: string): RuntimeState | undefined {
  let fd: number;
  try {
    fd = openSync(join(agentDir, RUNTIME_STATE_FILE), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile() || stat.size > MAX_BYTES) return undefined;
    const buffer = Buffer.alloc(stat.size);
    readSync(fd, buffer, 0, stat.size, 0);
    const parsed = JSON.parse(buffer.toString('utf8')) as Partial<RuntimeState>;
    if (parsed.format !== 1 || typeof parsed.sections !== 'object' || parsed.sections === null) return undefined;
    return parsed as RuntimeState;
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}
