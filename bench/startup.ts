// CLI start-up: `animus --version` next to `node -e 0`, interleaved in one run so
// both see the same machine load. Goal: the ratio of medians at most 2.
//   npm run bench -- startup [runs]
import { spawnSync } from 'node:child_process';
import { BIN, median, percentile, scratch, table } from './lib.js';

const RUNS = Number(process.argv[2] ?? 40);
const { dir, cleanup } = scratch('startup');
const env = { ...process.env, ANIMUS_HOME: dir, ANIMUS_CONFIG_DIR: dir };
const contenders: Record<string, string[]> = {
  'node -e 0': ['-e', '0'],
  'animus --version': [BIN, '--version'],
  'animus --help': [BIN, '--help'],
  'animus list (empty home)': [BIN, 'list'],
};
const samples: Record<string, number[]> = Object.fromEntries(Object.keys(contenders).map((k) => [k, []]));
try {
  for (let i = 0; i < RUNS + 3; i++) {
    for (const [name, args] of Object.entries(contenders)) {
      const start = process.hrtime.bigint();
      const result = spawnSync(process.execPath, args, { env, stdio: 'ignore' });
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (result.status !== 0) throw new Error(`${name} exited ${result.status}`);
      if (i >= 3) samples[name]!.push(ms); // the first runs warm the file cache
    }
  }
  const base = median(samples['node -e 0']!);
  console.log(`CLI start-up, ${RUNS} interleaved runs each (ms)\n`);
  console.log(
    table(Object.entries(samples).map(([name, ms]) => ({ command: name, median: median(ms), p90: percentile(ms, 90), 'x node -e 0': median(ms) / base }))),
  );
} finally {
  cleanup();
}
