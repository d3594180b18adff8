// `npm run bench -- metrics [agents] [rounds]`: a Prometheus scrape of a fleet whose
// agents each hold 1000 messages, as `animus metrics` and as `GET /metrics` from
// `animus serve`, next to `animus status --json` (the baseline) on the same fleet.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { writeTraffic, type TrafficRow } from '../test/helpers/traffic.js';
import { fleetEnv, makeFleet } from './fleet-fixture.js';
import { BIN, median, timeCommand } from './lib.js';

const count = Number(process.argv[2] ?? 500);
const rounds = Number(process.argv[3] ?? 5);
const GNU_TIME = '/usr/bin/time';

// makeFleet writes 200 messages of its own; 800 more, over the last 48 h, make 1000.
const KINDS = ['timeout', 'http_5xx', 'rate_limited', 'connection'];
const rows: TrafficRow[] = Array.from({ length: 800 }, (_, i) => ({
  agoMs: i * 216_000,
  latencyMs: 300 + ((i * 37) % 2500),
  tokens: { prompt: 900 + (i % 300), completion: 40 + (i % 60) },
  requests: i % 10 === 0 ? [{ outcome: 'retry', errorKind: KINDS[(i / 10) % KINDS.length]! }, { outcome: 'replied', stopReason: 'end_turn' }] : [{ outcome: 'replied', stopReason: 'end_turn' }],
}));

console.log(`generating ${count} agents with 1000 messages each…`);
const t0 = performance.now();
const fleet = await makeFleet(count, { fill: (path) => writeTraffic(path, rows) });
console.log(`  done in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${fleet.home}`);
const env = fleetEnv(fleet);

/** Wall time, and peak RSS through GNU time where it is installed. */
function measure(args: string[]): { ms: number; rssMiB?: number; stdout: string; status: number | null } {
  if (!existsSync(GNU_TIME)) {
    const run = timeCommand(process.execPath, [BIN, ...args], env);
    return { ms: run.ms, stdout: run.stdout, status: run.status };
  }
  const run = timeCommand(GNU_TIME, ['-f', '%M', process.execPath, BIN, ...args], env);
  const kib = Number(run.stderr.trim().split('\n').pop());
  return { ms: run.ms, rssMiB: Number.isFinite(kib) ? kib / 1024 : undefined, stdout: run.stdout, status: run.status };
}

function procRss(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kib('VmRSS') / 1024, hwm: kib('VmHWM') / 1024 };
}

const server = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--json'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
try {
  const url = await new Promise<string>((resolve, reject) => {
    let text = '';
    server.stdout!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      try {
        resolve((JSON.parse(text) as { metrics: string }).metrics);
      } catch {
        // Not whole yet.
      }
    });
    server.once('exit', (code) => reject(new Error(`animus serve exited with ${code}`)));
  });

  // Warm the page cache and check that each answers before timing.
  const check = measure(['metrics']);
  const families = check.stdout.split('\n').filter((l) => l.startsWith('# TYPE')).length;
  const samples = check.stdout.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
  console.log(`animus metrics: exit ${check.status}, ${families} families, ${samples} samples, ${(check.stdout.length / 1024).toFixed(0)} KiB`);
  measure(['status', '--json']);
  const first = performance.now();
  const body = await (await fetch(url)).text();
  console.log(`GET /metrics: first scrape ${(performance.now() - first).toFixed(0)} ms (threads and modules loaded), ${body.length === check.stdout.length ? 'same size as' : 'differs in size from'} animus metrics`);

  const status: Array<ReturnType<typeof measure>> = [];
  const metrics: Array<ReturnType<typeof measure>> = [];
  const scrapes: number[] = [];
  for (let i = 0; i < rounds; i++) {
    status.push(measure(['status', '--json']));
    metrics.push(measure(['metrics']));
    const start = performance.now();
    await (await fetch(url)).text();
    scrapes.push(performance.now() - start);
  }
  const mem = procRss(server.pid!);
  const rss = (list: Array<ReturnType<typeof measure>>) => {
    const values = list.flatMap((r) => (r.rssMiB === undefined ? [] : [r.rssMiB]));
    return values.length ? `${median(values).toFixed(0)} MiB peak RSS` : 'RSS n/a (no /usr/bin/time)';
  };
  const s = median(status.map((r) => r.ms));
  const m = median(metrics.map((r) => r.ms));
  const g = median(scrapes);
  console.log('');
  console.log(`${count} agents × 1000 messages, median of ${rounds} runs (wall time; commands include process start):`);
  console.log(`  animus status --json (baseline)  ${s.toFixed(0).padStart(6)} ms   ${rss(status)}`);
  console.log(`  animus metrics                   ${m.toFixed(0).padStart(6)} ms   ${rss(metrics)}   ${(m / s).toFixed(2)}x status (goal: under 1000 ms)`);
  console.log(`  GET /metrics (animus serve)      ${g.toFixed(0).padStart(6)} ms   server RSS ${mem.rss.toFixed(0)} MiB now, ${mem.hwm.toFixed(0)} MiB peak   ${(g / s).toFixed(2)}x status`);
  console.log(`  runs: status ${status.map((r) => r.ms.toFixed(0)).join(' ')} | metrics ${metrics.map((r) => r.ms.toFixed(0)).join(' ')} | GET ${scrapes.map((v) => v.toFixed(0)).join(' ')}`);
  const version = median([0, 1, 2].map(() => measure(['--version']).ms));
  console.log(`  for scale: \`animus --version\` (process start alone) ${version.toFixed(0)} ms; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  console.log(`  machine: ${execFileSync('nproc').toString().trim()} cores, node ${process.version}; no PM2 daemon (the agents are not running: status and metrics read the same process states)`);
} finally {
  server.kill('SIGTERM');
  await new Promise((resolve) => server.once('exit', resolve));
  await fleet.cleanup();
}
