// `npm run bench -- health [agents] [rounds] [by-hand]`: `animus health --json` against the
// multi-agent guide's health-check.sh on the same generated home, side by side. Every agent
// is registered with a PM2 daemon of the fleet's own (a stand-in process each, see
// registerStandIns), so the fleet is healthy for animus as it is for the guide's script.
// ANIMUS_BENCH_BEFORE=<another animus's bin/animus.js> also times that build in the same
// rounds (with a cache of its own: in a by-hand home the cache is per user, not per home).
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { SETTLE_MS } from '../src/health/check-cache.js';
import { fleetEnv, makeFleet, registerStandIns } from './fleet-fixture.js';
import { median, timeCommand } from './lib.js';

const count = Number(process.argv[2] ?? 1000);
const rounds = Number(process.argv[3] ?? 5);
// `by-hand`: the home is laid out as the guide does, never `animus init`ed (no .animus/).
const byHand = process.argv[4] === 'by-hand';
const bin = fileURLToPath(new URL('../bin/animus.js', import.meta.url));

// The guide's health-check.sh, re-typed; its clone folder `broca/` is animus's `runtime/`.
const GUIDE_HEALTH = `#!/bin/bash
# health-check.sh - Monitor all agent instances

cd "$ANIMUS_HOME"

echo "Animus: Broca 2 Agent Health Check"
echo "==================================="

for agent_dir in agent-*/; do
    agent_id=$(basename "$agent_dir")
    echo -n "Agent \${agent_id}: "

    if [ -f "\${agent_dir}/animus.db" ]; then
        echo -n "DB ✓ "
    else
        echo -n "DB ✗ "
    fi

    if [ -f "\${agent_dir}/.env" ]; then
        echo -n "ENV ✓ "
    else
        echo -n "ENV ✗ "
    fi

    if [ -d "\${agent_dir}/runtime" ]; then
        echo -n "BROCA ✓ "
    else
        echo -n "BROCA ✗ "
    fi

    if [ -d "\${agent_dir}/logs" ]; then
        echo -n "LOGS ✓ "
    else
        echo -n "LOGS ✗ "
    fi

    echo ""
done

echo ""
echo "Virtual Environment:"
if [ -d "venv" ]; then
    echo "✓ Virtual environment exists"
    source venv/bin/activate
    python --version
else
    echo "✗ Virtual environment missing"
fi
`;

console.log(`generating ${count} agent folders…`);
const t0 = performance.now();
const fleet = await makeFleet(count, { byHand });
console.log(`  done in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${fleet.home}`);
const script = join(fleet.root, 'health-check.sh');
writeFileSync(script, GUIDE_HEALTH, { mode: 0o700 });
const env = fleetEnv(fleet);
const beforeBin = process.env.ANIMUS_BENCH_BEFORE;
const beforeEnv = { ...env, XDG_CACHE_HOME: join(fleet.root, 'cache-before') };
if (beforeBin && !byHand) console.log('note: ANIMUS_BENCH_BEFORE on an init-ed home: both builds share .animus/health-cache, so each run finds the other\'s cache');

const time = (command: string, args: string[], withEnv = env) => timeCommand(command, args, withEnv);
const load = () => loadavg().map((v) => v.toFixed(2)).join(' ');

console.log(`registering ${count} stand-in processes with the fleet's PM2…`);
const t1 = performance.now();
const stopStandIns = await registerStandIns(fleet);
console.log(`  done in ${((performance.now() - t1) / 1000).toFixed(1)} s`);

try {
  // health remembers only files that held still for SETTLE_MS: let the new fleet settle, then
  // warm the page cache and health's own cache, and check both scripts work before timing.
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS + 100));
  time(process.execPath, [bin, 'health', '--json']);
  if (beforeBin) time(process.execPath, [beforeBin, 'health', '--json'], beforeEnv);
  const guideOut = time('bash', [script]);
  const animusOut = time(process.execPath, [bin, 'health', '--json']);
  const report = JSON.parse(animusOut.stdout) as { agents: Array<{ checks: unknown[]; healthy: boolean }>; summary: unknown; processManagers: unknown };
  const checks = report.agents.reduce((n, a) => n + a.checks.length, 0);
  console.log(`guide: ${guideOut.stdout.split('\n').filter((l) => l.startsWith('Agent ')).length} agents, 4 existence tests each (exit ${guideOut.status})`);
  console.log(`animus: ${report.agents.length} agents, ${checks} checks (exit ${animusOut.status}; summary ${JSON.stringify(report.summary)}; managers ${JSON.stringify(report.processManagers)})`);

  if (beforeBin) {
    const out = time(process.execPath, [beforeBin, 'health', '--json'], beforeEnv);
    const summary = (JSON.parse(out.stdout) as { summary: unknown }).summary;
    console.log(`before (${beforeBin}): exit ${out.status}; summary ${JSON.stringify(summary)}`);
  }
  console.log(`load average at start: ${load()}`);

  const guide: number[] = [];
  const animus: number[] = [];
  const before: number[] = [];
  const cpu = { guide: [] as number[], animus: [] as number[], before: [] as number[] };
  const timed = (into: number[], cpuInto: number[], command: string, args: string[], withEnv = env) => {
    const run = time(command, args, withEnv);
    into.push(run.ms);
    cpuInto.push(run.cpuMs);
  };
  const uncached: number[] = [];
  const live: number[] = [];
  // A busy fleet: a tenth of the agents took a message since the last run (a row written
  // to each of their databases), so their databases are opened and checked again.
  const busy = fleet.ids.slice(0, Math.ceil(count / 10));
  const write = () => {
    for (const id of busy) {
      const db = new Database(join(fleet.home, id, 'animus.db'));
      db.prepare("INSERT INTO queue (status, timestamp) VALUES ('completed', datetime('now'))").run();
      db.close();
    }
  };
  for (let i = 0; i < rounds; i++) {
    timed(guide, cpu.guide, 'bash', [script]);
    timed(animus, cpu.animus, process.execPath, [bin, 'health', '--json']);
    if (beforeBin) timed(before, cpu.before, process.execPath, [beforeBin, 'health', '--json'], beforeEnv);
    uncached.push(time(process.execPath, [bin, 'health', '--json', '--no-cache']).ms);
  }
  // After the rounds above: written databases stay unsettled for SETTLE_MS, so they are read every time.
  for (let i = 0; i < rounds; i++) {
    write();
    live.push(time(process.execPath, [bin, 'health', '--json']).ms);
  }
  const g = median(guide);
  const a = median(animus);
  const u = median(uncached);
  const l = median(live);
  console.log('');
  console.log(`health over ${count} agents${byHand ? ' in a home laid out by hand (no init)' : ''}, median of ${rounds} runs (wall time, including process start):`);
  console.log(`  guide health-check.sh              ${g.toFixed(0).padStart(7)} ms`);
  console.log(`  animus health --json               ${a.toFixed(0).padStart(7)} ms   ${(a / g).toFixed(2)}x the guide (goal ≤ 0.30x; unchanged files answered from health's cache)`);
  if (beforeBin) {
    const b = median(before);
    console.log(`  the build before, health --json    ${b.toFixed(0).padStart(7)} ms   ${(b / g).toFixed(2)}x (same rounds; this build is ${(a / b).toFixed(2)}x of it)`);
  }
  console.log(`  animus health --json --no-cache    ${u.toFixed(0).padStart(7)} ms   ${(u / g).toFixed(2)}x (every file read, every database opened and quick_checked)`);
  console.log(`  ${`animus health --json, ${busy.length} busy`.padEnd(34)} ${l.toFixed(0).padStart(7)} ms   ${(l / g).toFixed(2)}x (${busy.length} databases written since the last run)`);
  const cg = median(cpu.guide);
  const ca = median(cpu.animus);
  console.log(`  CPU time (user + system, median): guide ${cg.toFixed(0)} ms, animus ${ca.toFixed(0)} ms (${(ca / cg).toFixed(2)}x)${beforeBin ? `, the build before ${median(cpu.before).toFixed(0)} ms (${(median(cpu.before) / cg).toFixed(2)}x)` : ''}`);
  console.log(`  runs: guide ${guide.map((v) => v.toFixed(0)).join(' ')} | animus ${animus.map((v) => v.toFixed(0)).join(' ')} |${beforeBin ? ` before ${before.map((v) => v.toFixed(0)).join(' ')} |` : ''} no-cache ${uncached.map((v) => v.toFixed(0)).join(' ')} | busy ${live.map((v) => v.toFixed(0)).join(' ')}`);
  const start = time(process.execPath, [bin, '--version']).ms;
  console.log(`  for scale: \`animus --version\` (process start alone) ${start.toFixed(0)} ms`);
  // A machine-wide setting every Node process pays for at start, before any of animus's code runs.
  if (env.NODE_EXTRA_CA_CERTS) {
    const bare = (withEnv: NodeJS.ProcessEnv) => median(Array.from({ length: 5 }, () => time(process.execPath, ['-e', '0'], withEnv).ms));
    const { NODE_EXTRA_CA_CERTS: _extra, ...without } = env;
    console.log(`  this environment sets NODE_EXTRA_CA_CERTS (${env.NODE_EXTRA_CA_CERTS}): \`node -e 0\` ${bare(env).toFixed(0)} ms, ${bare(without).toFixed(0)} ms without it`);
  }
  console.log(`  machine: ${execFileSync('nproc').toString().trim()} cores, node ${process.version}; load average at the end: ${load()}`);
} finally {
  stopStandIns();
  await fleet.cleanup();
}
