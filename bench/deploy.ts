// Deploying N agents (default 100) from a local runtime repo: animus next to the
// multi-agent guide's manual recipe (`git clone` + copy templates + `sed` the .env +
// mkdir logs), on the same repo, in one run. Prints wall time and disk use.
//   npm run bench -- deploy [N]
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { initHome } from '../src/home/init.js';
import { BIN, duKiB, REPO_ROOT, run, scratch, table, timeMs } from './lib.js';

const N = Number(process.argv[2] ?? 100);
const { dir, cleanup } = scratch('deploy');
try {
  // One runtime repo for every contender: the one animus publishes into a home.
  const seed = join(dir, 'seed-home');
  const { runtimeRepo } = await initHome(seed);
  const templates = join(dir, 'templates');
  run('mkdir', ['-p', templates]);
  writeFileSync(join(templates, '.env.example'), readFileSync(join(REPO_ROOT, 'templates', 'agent.env'), 'utf8').replace(/\{\{AGENT_ENDPOINT\}\}|\{\{AGENT_API_KEY\}\}|\{\{AGENT_ID\}\}/g, ''));
  writeFileSync(join(templates, 'settings.json'), '{"message_processing":{"mode":"live","queue_refresh":5,"max_retries":3}}\n');
  const ids = Array.from({ length: N }, () => randomUUID());

  // The guide's deploy-agent.sh, once per agent, as a person or a loop would run it.
  const manual = (home: string, source: string) => {
    const script = `
      set -e
      mkdir -p "${home}"
      for id in ${ids.join(' ')}; do
        cd "${home}"
        mkdir -p "agent-$id"
        cd "agent-$id"
        git clone -q "${source}" broca
        cp "${templates}/.env.example" .env
        cp "${templates}/settings.json" .
        sed -i "s|AGENT_ENDPOINT=.*|AGENT_ENDPOINT=https://api.letta.com|" .env
        sed -i "s/AGENT_API_KEY=.*/AGENT_API_KEY=sk-bench/" .env
        mkdir -p logs
      done`;
    return timeMs(() => run('bash', ['-c', script]));
  };

  const manualLocalHome = join(dir, 'manual-local');
  const manualLocal = manual(manualLocalHome, runtimeRepo);
  const manualFullHome = join(dir, 'manual-full');
  const manualFull = manual(manualFullHome, `file://${runtimeRepo}`);

  const env = { ...process.env, ANIMUS_CONFIG_DIR: join(dir, 'cfg'), AGENT_API_KEY: 'sk-bench' };
  const batchHome = join(dir, 'animus-batch');
  run('node', [BIN, 'init', '--home', batchHome], env);
  const batch = timeMs(() => run('node', [BIN, 'deploy', ...ids, '--home', batchHome, '--endpoint', 'https://api.letta.com', '--yes'], env));

  const singleHome = join(dir, 'animus-single');
  run('node', [BIN, 'init', '--home', singleHome], env);
  const single = timeMs(() => {
    for (const id of ids) run('node', [BIN, 'deploy', id, '--home', singleHome, '--endpoint', 'https://api.letta.com', '--yes'], env);
  });

  const perAgent = (home: string) => duKiB(join(home)) / N;
  // The clones alone, all of a home's at once (hardlinked objects counted once), per agent.
  const clonesPerAgent = (home: string, folder: string) => duKiB(...ids.map((id) => join(home, `agent-${id}`, folder))) / N;
  const shared = duKiB(join(batchHome, '.animus'), join(batchHome, 'node_modules'));

  console.log(`Deploying ${N} agents from one local runtime repo (${runtimeRepo.replace(dir, '<tmp>')})\n`);
  console.log(
    table([
      { recipe: 'guide: git clone <path> + cp + sed', 'wall ms': manualLocal, 'ms/agent': manualLocal / N, 'KiB/agent': perAgent(manualLocalHome), 'clone KiB/agent': clonesPerAgent(manualLocalHome, 'broca'), 'vs guide': 1 },
      { recipe: 'guide: git clone file:// (full copy, as from a remote)', 'wall ms': manualFull, 'ms/agent': manualFull / N, 'KiB/agent': perAgent(manualFullHome), 'clone KiB/agent': clonesPerAgent(manualFullHome, 'broca'), 'vs guide': manualFull / manualLocal },
      { recipe: `animus deploy <${N} ids> (one command)`, 'wall ms': batch, 'ms/agent': batch / N, 'KiB/agent': (duKiB(batchHome) - shared) / N, 'clone KiB/agent': clonesPerAgent(batchHome, 'runtime'), 'vs guide': batch / manualLocal },
      { recipe: 'animus deploy <id>, once per agent', 'wall ms': single, 'ms/agent': single / N, 'KiB/agent': (duKiB(singleHome) - shared) / N, 'clone KiB/agent': clonesPerAgent(singleHome, 'runtime'), 'vs guide': single / manualLocal },
    ]),
  );
  console.log(`\nKiB/agent: the agent folders; animus's include a ${duKiB(join(batchHome, `agent-${ids[0]}`, 'animus.db'))} KiB SQLite database the guide's recipe does not make.`);
  console.log(`clone KiB/agent: all the clones of a home together (hardlinked objects counted once) over ${N}.`);
  console.log(`Shared by the whole animus home, once: ${shared} KiB (runtime repo + node_modules links), not in the per-agent figures.`);
} finally {
  cleanup();
}
