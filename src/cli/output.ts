import { redactText } from '../core/redact.js';
import { importEsm } from '../core/import-esm.js';

/**
 * The one place that writes to the terminal. Data goes to stdout (one JSON document
 * under --json, else tables for people); messages and progress go to stderr, so
 * `animus list --json | jq` always sees clean JSON.
 */
export interface OutputOptions {
  json: boolean;
  color: boolean;
  /** Colours for people; plain text when absent (see loadStyle). */
  style?: Style;
  stdout?: NodeJS.WriteStream;
  stderr?: NodeJS.WriteStream;
}

export interface Progress {
  update(label: string): void;
  done(message?: string): void;
  fail(message?: string): void;
}

export interface Column<Row> {
  header: string;
  value: (row: Row) => string;
  /** Right-align (numbers). */
  align?: 'left' | 'right';
}

/** The few colours animus uses. */
export type Style = Record<'bold' | 'cyan' | 'dim' | 'green' | 'red' | 'yellow', (text: string) => string>;

const plain = (text: string) => text;
export const PLAIN: Style = { bold: plain, cyan: plain, dim: plain, green: plain, red: plain, yellow: plain };

/**
 * chalk only when colour is on: output for scripts and pipes (--json, NO_COLOR, not a
 * terminal) never loads it, which is a good part of a small command's start-up.
 */
export async function loadStyle(color: boolean): Promise<Style> {
  if (!color) return PLAIN;
  const { Chalk } = await importEsm<typeof import('chalk')>('chalk');
  const chalk = new Chalk({ level: 1 });
  return { bold: (t) => chalk.bold(t), cyan: (t) => chalk.cyan(t), dim: (t) => chalk.dim(t), green: (t) => chalk.green(t), red: (t) => chalk.red(t), yellow: (t) => chalk.yellow(t) };
}

export class Output {
  readonly json: boolean;
  readonly color: boolean;
  readonly style: Style;
  private readonly stdout: NodeJS.WriteStream;
  private readonly stderr: NodeJS.WriteStream;

  constructor(options: OutputOptions) {
    this.json = options.json;
    this.stdout = options.stdout ?? process.stdout;
    this.stderr = options.stderr ?? process.stderr;
    this.color = options.color;
    this.style = options.style ?? PLAIN;
  }

  /** A command's result: JSON under --json, else the human rendering (if any). */
  result(data: unknown, human?: () => string | string[] | undefined): void {
    if (this.json) {
      this.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
      return;
    }
    const text = human?.();
    if (text === undefined) return;
    const lines = Array.isArray(text) ? text.join('\n') : text;
    if (lines !== '') this.stdout.write(`${lines}\n`);
  }

  // Messages can carry text from an agent's files or logs: whatever has the shape of a key or token is masked.
  info(message: string): void {
    this.stderr.write(`${redactText(message)}\n`);
  }

  success(message: string): void {
    this.stderr.write(`${this.style.green('✓')} ${redactText(message)}\n`);
  }

  warn(message: string): void {
    this.stderr.write(`${this.style.yellow('!')} ${redactText(message)}\n`);
  }

  error(message: string): void {
    this.stderr.write(`animus: ${redactText(message)}\n`);
  }

  /** Raw text to stdout (logs, followed output). */
  write(text: string): void {
    this.stdout.write(text);
  }

  /**
   * A spinner on a terminal; off a terminal, nothing until the end (then one line),
   * so logs of scripted runs are not filled with frames.
   */
  progress(label: string): Progress {
    const tty = this.stderr.isTTY === true && !this.json;
    const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
    let current = label;
    let frame = 0;
    const draw = () => this.stderr.write(`\r\x1b[2K${this.style.cyan(frames[frame++ % frames.length]!)} ${current}`);
    const timer = tty ? setInterval(draw, 80) : undefined;
    timer?.unref();
    if (tty) draw();
    const finish = (mark: string, message: string | undefined) => {
      if (timer) clearInterval(timer);
      if (tty) this.stderr.write('\r\x1b[2K');
      if (message !== undefined && !this.json) this.stderr.write(`${mark} ${message}\n`);
    };
    return {
      update: (text) => {
        current = text;
      },
      done: (message) => finish(this.style.green('✓'), message),
      fail: (message) => finish(this.style.red('✗'), message),
    };
  }

  /** Runs `work` under a progress display that ends as done (with `doneMessage`) or failed. */
  async during<T>(label: string, work: (progress: Progress) => Promise<T>, doneMessage?: (result: T) => string | undefined): Promise<T> {
    const progress = this.progress(label);
    let result: T;
    try {
      result = await work(progress);
    } catch (error) {
      progress.fail();
      throw error;
    }
    progress.done(doneMessage?.(result));
    return result;
  }

  table<Row>(rows: readonly Row[], columns: readonly Column<Row>[]): string {
    const cells = rows.map((row) => columns.map((column) => column.value(row)));
    const widths = columns.map((column, i) => Math.max(visibleLength(column.header), ...cells.map((row) => visibleLength(row[i]!))));
    const pad = (text: string, i: number) => {
      const gap = ' '.repeat(widths[i]! - visibleLength(text));
      return columns[i]!.align === 'right' ? gap + text : text + gap;
    };
    const header = columns.map((column, i) => this.style.bold(pad(column.header, i))).join('  ');
    const body = cells.map((row) => row.map((cell, i) => pad(cell, i)).join('  ').trimEnd());
    return [header.trimEnd(), ...body].join('\n');
  }

  mark(ok: boolean | undefined): string {
    if (ok === undefined) return this.style.dim('-');
    return ok ? this.style.green('✓') : this.style.red('✗');
  }
}

const ANSI = /\x1b\[[0-9;]*m/g;

function visibleLength(text: string): number {
  return text.replace(ANSI, '').length;
}
