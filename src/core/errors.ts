/**
 * One error type for everything a user can cause or fix. The CLI turns it into
 * `animus: <message>` on stderr and the exit code below; anything that is not an
 * AnimusError is a bug and is reported with its stack.
 */

/** Exit codes, documented in the README. Scripts may rely on them. */
export const EXIT = {
  ok: 0,
  /** The operation ran and failed (an agent unhealthy, a start that did not come up). */
  failure: 1,
  /** Bad flags or arguments. */
  usage: 2,
  /** An agent, archive or file that does not exist. */
  notFound: 3,
  /** The target exists or is in a state that forbids the operation. */
  conflict: 4,
  /** Data on disk is malformed: .env, settings.json, database, archive. */
  invalidData: 5,
  /** Something outside animus is missing or refuses: git, PM2, systemd, the network. */
  environment: 6,
  /** A bug in animus. */
  internal: 70,
  /** Ctrl-C. */
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export type ErrorCode =
  | 'EUSAGE'
  | 'EBADID'
  | 'ENOAGENT'
  | 'EEXISTS'
  | 'ENOTFOUND'
  | 'EBADENV'
  | 'EBADSETTINGS'
  | 'EBADDB'
  | 'EBADARCHIVE'
  | 'EGIT'
  | 'ENOPM'
  | 'EPM'
  | 'ENOSYSTEMD'
  | 'ENOTTY'
  | 'EINTERRUPTED'
  | 'EFAILED'
  | 'EIO'
  /** A symlink, FIFO or path outside the agent folder where one of its files should be. */
  | 'EUNSAFEPATH';

const EXIT_BY_CODE: Record<ErrorCode, ExitCode> = {
  EUSAGE: EXIT.usage,
  EBADID: EXIT.usage,
  ENOTTY: EXIT.usage,
  ENOAGENT: EXIT.notFound,
  ENOTFOUND: EXIT.notFound,
  EEXISTS: EXIT.conflict,
  EBADENV: EXIT.invalidData,
  EBADSETTINGS: EXIT.invalidData,
  EBADDB: EXIT.invalidData,
  EBADARCHIVE: EXIT.invalidData,
  EUNSAFEPATH: EXIT.invalidData,
  EGIT: EXIT.environment,
  ENOPM: EXIT.environment,
  EPM: EXIT.environment,
  ENOSYSTEMD: EXIT.environment,
  EIO: EXIT.environment,
  EFAILED: EXIT.failure,
  EINTERRUPTED: EXIT.interrupted,
};

export interface AnimusErrorOptions {
  cause?: unknown;
  /** Overrides the exit code that the error code implies. */
  exitCode?: ExitCode;
  /** Extra structured detail for `--json` output. */
  detail?: Record<string, unknown>;
}

export class AnimusError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: ExitCode;
  readonly detail: Record<string, unknown> | undefined;

  /** `message` is one line: what is wrong and how to fix it. */
  constructor(code: ErrorCode, message: string, options: AnimusErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AnimusError';
    this.code = code;
    this.exitCode = options.exitCode ?? EXIT_BY_CODE[code];
    this.detail = options.detail;
  }
}

export function isAnimusError(error: unknown): error is AnimusError {
  return error instanceof AnimusError;
}

/** The message of any thrown value, one line. */
export function describeError(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n').find((line) => line.trim() !== '')?.trim() ?? 'unknown error';
}

/**
 * A message is one line, whatever it quotes: a value typed with a line break or a
 * terminal escape in it is shown escaped (\\n, \\x1b), never acted on by the terminal
 * or splitting a script's one-line read.
 */
export function oneLine(text: string): string {
  return text.replace(/\r?\n/g, '\\n').replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
