import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Shared helpers for bench scripts: timing, disk use, a scratch folder, and printing. */

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BIN = join(REPO_ROOT, 'bin', 'animus.js');

export function scratch(label: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `animus-bench-${label}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function timeMs(work: () => void): number {
  const start = process.hrtime.bigint();
  work();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

export async function timeMsAsync(work: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await work();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** Disk use in KiB as `du -sk` counts it (a hardlinked file once per invocation). */
export function duKiB(...paths: string[]): number {
  const out = execFileSync('du', ['-sck', ...paths], { encoding: 'utf8' });
  return Number(/^(\d+)\s+total$/m.exec(out)?.[1] ?? NaN);
}

export function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env, cwd?: string): void {
  const result = spawnSync(command, args, { env, cwd, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.status}): ${result.stderr}`);
}

/**
 * Runs a command to the end and times it: wall time (process start included) and the CPU
 * time (user + system) it and the children it waited for used, which a shared machine's
 * load changes far less than the wall time. The CPU time comes from bash's `times`
 * around the command (a bash of a few milliseconds, counted in neither figure's command).
 */
export function timeCommand(command: string, args: string[], env: NodeJS.ProcessEnv): { ms: number; cpuMs: number; status: number | null; stdout: string; stderr: string } {
  const start = performance.now();
  const result = spawnSync('bash', ['-c', '"$@"; status=$?; times >&2; exit $status', 'bash', command, ...args], { env, encoding: 'utf8', maxBuffer: 512 * 1024 * 1024 });
  const ms = performance.now() - start;
  const lines = result.stderr.trimEnd().split('\n');
  // `times`: the shell's own user and system time, then its children's: `0m1.234s 0m0.056s`.
  const children = /^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/.exec(lines.at(-1) ?? '');
  const cpuMs = children ? (Number(children[1]) * 60 + Number(children[2]) + Number(children[3]) * 60 + Number(children[4])) * 1000 : NaN;
  return { ms, cpuMs, status: result.status, stdout: result.stdout, stderr: lines.slice(0, -2).join('\n') };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export function table(rows: Array<Record<string, string | number>>): string {
  const headers = Object.keys(rows[0] ?? {});
  const cells = rows.map((row) => headers.map((h) => (typeof row[h] === 'number' ? fmt(row[h] as number) : String(row[h]))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(headers), ...cells.map(line)].join('\n');
}

export function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  return Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2);
}
