// `npm run bench -- backup [agents] [rounds]`: `animus backup --all` against the
// multi-agent guide's cp backup loop on the same generated home, side by side.
import { readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { fleetEnv, makeFleet } from './fleet-fixture.js';
import { median, timeCommand } from './lib.js';

const count = Number(process.argv[2] ?? 1000);
const rounds = Number(process.argv[3] ?? 5);
const bin = fileURLToPath(new URL('../bin/animus.js', import.meta.url));

// The guide's "Backup all agent databases" loop, re-typed (run from the home, as the guide's `cd ~/animus`).
const GUIDE_BACKUP = `#!/bin/bash
cd "$ANIMUS_HOME"
mkdir -p backups/$(date +%Y%m%d)

# Backup all agent databases
for agent_dir in agent-*/; do
    agent_id=$(basename "$agent_dir")
    cp "$agent_dir/animus.db" "backups/$(date +%Y%m%d)/\${agent_id}_animus.db"
done
`;

console.log(`generating ${count} agent folders…`);
const t0 = performance.now();
const fleet = await makeFleet(count);
console.log(`  done in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${fleet.home}`);
const script = join(fleet.root, 'backup-loop.sh');
writeFileSync(script, GUIDE_BACKUP, { mode: 0o700 });
const out = join(fleet.root, 'animus-backups');
const env = fleetEnv(fleet);

const time = (command: string, args: string[]) => timeCommand(command, args, env);
const load = () => loadavg().map((v) => v.toFixed(2)).join(' ');

function folderBytes(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    files++;
    bytes += statSync(join(entry.parentPath ?? entry.path, entry.name)).size;
  }
  return { files, bytes };
}

const clean = () => {
  rmSync(join(fleet.home, 'backups'), { recursive: true, force: true });
  rmSync(out, { recursive: true, force: true });
};

try {
  // One untimed run of each: warms the page cache and shows what each produces.
  clean();
  const guideCheck = time('bash', [script]);
  const animusCheck = time(process.execPath, [bin, 'backup', '--all', '--out', out]);
  if (animusCheck.status !== 0) throw new Error(`animus backup failed: ${animusCheck.stderr}`);
  const guideFiles = folderBytes(join(fleet.home, 'backups'));
  const animusFiles = folderBytes(out);
  console.log(`guide: ${guideFiles.files} file copies of animus.db, ${(guideFiles.bytes / 1024 ** 2).toFixed(1)} MiB (exit ${guideCheck.status}; a file copy, not safe while the agent writes)`);
  console.log(`animus: ${animusFiles.files} archives (consistent image via sqlite3_serialize + quick_check + .env + settings.json + sha256 manifest, fsynced), ${(animusFiles.bytes / 1024 ** 2).toFixed(1)} MiB`);

  console.log(`load average at start: ${load()}`);
  const guide: number[] = [];
  const animus: number[] = [];
  const encrypted: number[] = [];
  const cpu = { guide: [] as number[], animus: [] as number[] };
  for (let i = 0; i < rounds; i++) {
    clean();
    const guideRun = time('bash', [script]);
    guide.push(guideRun.ms);
    cpu.guide.push(guideRun.cpuMs);
    clean();
    const animusRun = time(process.execPath, [bin, 'backup', '--all', '--out', out]);
    animus.push(animusRun.ms);
    cpu.animus.push(animusRun.cpuMs);
    clean();
    env.ANIMUS_BACKUP_PASSPHRASE = 'bench passphrase';
    encrypted.push(time(process.execPath, [bin, 'backup', '--all', '--encrypt', '--out', out]).ms);
    delete env.ANIMUS_BACKUP_PASSPHRASE;
  }
  const g = median(guide);
  const a = median(animus);
  const e = median(encrypted);
  console.log('');
  console.log(`backup of ${count} agents, median of ${rounds} runs (wall time, including process start):`);
  console.log(`  guide cp loop                     ${g.toFixed(0).padStart(7)} ms`);
  console.log(`  animus backup --all               ${a.toFixed(0).padStart(7)} ms   ${(a / g).toFixed(2)}x the guide (goal ≤ 0.50x)`);
  console.log(`  animus backup --all --encrypt     ${e.toFixed(0).padStart(7)} ms   ${(e / g).toFixed(2)}x`);
  // Both threads of the backup count: its CPU time can exceed its wall time.
  console.log(`  CPU time (user + system, median): guide ${median(cpu.guide).toFixed(0)} ms, animus ${median(cpu.animus).toFixed(0)} ms (${(median(cpu.animus) / median(cpu.guide)).toFixed(2)}x)`);
  console.log(`  runs: guide ${guide.map((v) => v.toFixed(0)).join(' ')} | animus ${animus.map((v) => v.toFixed(0)).join(' ')} | encrypted ${encrypted.map((v) => v.toFixed(0)).join(' ')}`);
  console.log(`  load average at the end: ${load()}`);
} finally {
  clean();
  await fleet.cleanup();
}
