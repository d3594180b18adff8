import { closeSync, fstatSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { ensureAgentDir, openAgentFileSync, pathInside } from '../core/agent-fs.js';
import { SECRET_FILE_MODE, writeFileAtomicSync } from '../core/fs.js';
import { loadOnUse } from '../core/load-package.js';

/** Loaded at the first rotation: an idle runtime that never rotates does not carry zlib. */
const zlib = loadOnUse<typeof import('node:zlib')>('node:zlib');

/**
 * The runtime's own log file, `logs/runtime.log`, rotated by size by the runtime itself.
 *
 * Why the writer rotates rather than pm2-logrotate or logrotate: one mechanism for PM2
 * and systemd; no file left held open by PM2 (or a copytruncate window that loses
 * lines) after a rotation, since the only writer is the one that renames; and no root
 * process ever opening a path the agent controls (systemd's `append:` did, issue 10
 * item 2). The file is opened O_APPEND|O_NOFOLLOW, 0600, through core/agent-fs.
 *
 * Each line is one write(2) on an O_APPEND fd, so a crash loses no line that was
 * logged. When the next line would take the file past `maxBytes`, the writer closes
 * it, shifts `runtime.log.N.gz` up (dropping those beyond `keep`), renames the file to
 * `runtime.log.1`, opens a fresh one, and compresses `.1` into `.1.gz` (synchronously:
 * at the default 10 MiB that is a fraction of a second once per 10 MiB of logs, and
 * nothing can interleave with it). A `.1` left by a crash mid-compression is
 * compressed at the next rotation or start.
 */
export interface RotatingLogOptions {
  agentDir: string;
  /** Relative to the agent folder; default logs/runtime.log. */
  file?: string;
  maxBytes: number;
  keep: number;
}

export interface RotatingLog {
  write(line: string): void;
  close(): void;
  /** Rotations done since open (for tests and the log line that reports them). */
  readonly rotations: number;
}

export const RUNTIME_LOG = 'logs/runtime.log';

export function openRotatingLog(options: RotatingLogOptions): RotatingLog {
  const rel = options.file ?? RUNTIME_LOG;
  ensureAgentDir(options.agentDir, rel.slice(0, rel.lastIndexOf('/')));
  const path = pathInside(options.agentDir, rel);
  let fd = open();
  let size = fstatSync(fd).size;
  let rotations = 0;
  compressLeftover();

  function open(): number {
    return openAgentFileSync(options.agentDir, rel, { flags: 'a', mode: SECRET_FILE_MODE })!;
  }

  function compressLeftover(): void {
    const plain = `${path}.1`;
    if (!statSync(plain, { throwIfNoEntry: false })?.isFile()) return;
    if (options.keep === 0) {
      rmSync(plain, { force: true });
      return;
    }
    writeFileAtomicSync(`${path}.1.gz`, zlib().gzipSync(readFileSync(plain)), SECRET_FILE_MODE);
    rmSync(plain, { force: true });
  }

  function rotate(): void {
    closeSync(fd);
    // A leftover .1 (a crash mid-compression) is compressed before it is shifted.
    compressLeftover();
    rmSync(`${path}.${options.keep}.gz`, { force: true });
    for (let n = options.keep - 1; n >= 1; n--) {
      try {
        renameSync(`${path}.${n}.gz`, `${path}.${n + 1}.gz`);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
    renameSync(path, `${path}.1`);
    fd = open();
    size = 0;
    rotations++;
    compressLeftover();
  }

  return {
    write(line: string) {
      const bytes = Buffer.from(line, 'utf8');
      if (size > 0 && size + bytes.length > options.maxBytes) rotate();
      let written = 0;
      while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
      size += bytes.length;
    },
    close() {
      closeSync(fd);
    },
    get rotations() {
      return rotations;
    },
  };
}

export interface LogSink {
  write(line: string): void;
  close(): void;
}

/**
 * Where the runtime's JSON lines go: `logs/runtime.log` (rotating) when log_target is
 * `file`; stdout when it is `journal` (systemd reads it), and also at a terminal (or
 * with ANIMUS_LOG_STDOUT=1, which the test harness sets) so someone running it by hand sees it.
 */
export function openLogSink(options: { agentDir: string; target: 'file' | 'journal'; maxMb: number; keep: number; env: NodeJS.ProcessEnv; stdout?: NodeJS.WriteStream }): LogSink {
  const stdout = options.stdout ?? process.stdout;
  const toStdout = options.target === 'journal' || stdout.isTTY === true || options.env.ANIMUS_LOG_STDOUT === '1';
  const file = options.target === 'file' ? openRotatingLog({ agentDir: options.agentDir, maxBytes: options.maxMb * 1024 * 1024, keep: options.keep }) : undefined;
  return {
    write(line) {
      file?.write(line);
      if (toStdout) stdout.write(line);
    },
    close() {
      file?.close();
    },
  };
}
