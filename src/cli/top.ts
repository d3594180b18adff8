import type { StatusWithMetrics } from '../metrics/status.js';
import type { CliContext } from './context.js';
import { SORT_KEYS, sortRows, statusColumns } from './status-table.js';

const ESC = '\x1b[';

/**
 * `animus top`: the status table on the terminal's alternate screen, redrawn every
 * interval and on each key. Keys are read raw (no Enter); the terminal is put back
 * as it was however top ends (q, Ctrl-C, an error).
 */
export async function runTop(ctx: CliContext, read: () => Promise<StatusWithMetrics[]>, intervalMs: number): Promise<void> {
  const stdin = process.stdin;
  const stdout = process.stdout;
  let sortIndex = SORT_KEYS.findIndex((k) => k.name === 'agent');
  let reverse = false;
  let wide = false;
  let rows: StatusWithMetrics[] = [];
  let error: string | undefined;
  let refreshedAt: Date | undefined;

  const draw = () => {
    const key = SORT_KEYS[sortIndex]!;
    const sorted = sortRows(rows, key, reverse);
    const width = stdout.columns ?? 100;
    const height = stdout.rows ?? 30;
    const title = `animus top  ${rows.length} agent(s)  sorted by ${key.name}${reverse ? ' (reversed)' : ''}  ${refreshedAt ? refreshedAt.toTimeString().slice(0, 8) : 'reading…'}`;
    const help = 's/S sort  r reverse  w wide  q quit';
    const table = rows.length > 0 ? ctx.out.table(sorted, statusColumns(ctx.out, sorted, wide)).split('\n') : ['no agents in this home'];
    const lines = [ctx.out.style.bold(title), ctx.out.style.dim(help), ...(error ? [ctx.out.style.red(error)] : []), '', ...table].slice(0, Math.max(1, height - 1));
    // Cut at the terminal's width on visible characters, so a wide table does not wrap.
    stdout.write(`${ESC}H${ESC}2J${lines.map((line) => clip(line, width)).join('\n')}`);
  };

  let stop: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    stop = resolve;
  });
  const onKey = (data: Buffer) => {
    for (const ch of data.toString('utf8')) {
      if (ch === 'q' || ch === '\u0003' || ch === '\u001b') return stop();
      if (ch === 's') sortIndex = (sortIndex + 1) % SORT_KEYS.length;
      else if (ch === 'S') sortIndex = (sortIndex + SORT_KEYS.length - 1) % SORT_KEYS.length;
      else if (ch === 'r') reverse = !reverse;
      else if (ch === 'w') wide = !wide;
    }
    draw();
  };
  const onAbort = () => stop();

  stdout.write(`${ESC}?1049h${ESC}?25l`);
  stdin.setRawMode(true);
  stdin.resume();
  stdin.on('data', onKey);
  stdout.on('resize', draw);
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  let running = true;
  const refresh = async () => {
    try {
      rows = await read();
      error = undefined;
      refreshedAt = new Date();
    } catch (e) {
      error = (e as Error).message;
    }
    if (!running) return;
    draw();
    timer = setTimeout(() => void refresh(), intervalMs);
  };
  try {
    draw();
    void refresh();
    await done;
  } finally {
    running = false;
    if (timer) clearTimeout(timer);
    stdin.off('data', onKey);
    stdout.off('resize', draw);
    ctx.signal.removeEventListener('abort', onAbort);
    stdin.setRawMode(false);
    stdin.pause();
    stdout.write(`${ESC}?25h${ESC}?1049l`);
  }
}

const ANSI = /\x1b\[[0-9;]*m/g;

function clip(line: string, width: number): string {
  if (line.replace(ANSI, '').length <= width) return line;
  let visible = 0;
  let out = '';
  for (let i = 0; i < line.length; ) {
    const match = /^\x1b\[[0-9;]*m/.exec(line.slice(i));
    if (match) {
      out += match[0];
      i += match[0].length;
      continue;
    }
    if (visible >= width) break;
    out += line[i];
    visible++;
    i++;
  }
  return `${out}${ESC}0m`;
}
