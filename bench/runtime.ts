// The agent runtime under load, against a zero-latency Letta stand-in on 127.0.0.1:
//   - messages/s through one agent (N messages queued at once, live mode)
//   - the runtime's added latency per message, p50/p99: from the message being stored
//     (as a plugin or `animus send` stores it, with the wake poke) to the runtime's
//     "item completed" line, minus the time the stand-in took to answer
//   - the runtime's CPU time per message (user + system, all its threads, from /proc) while
//     it works through the N queued messages: less sensitive to a loaded machine than the
//     wall-clock figures, which a busy neighbour stretches
//   - Letta calls per message (what the stand-in received, over the sequential messages)
//   - RSS of a fresh idle instance and of the loaded one, next to an idle bare `node`, all
//     three read at the same moments: 3 s after the fresh instance is ready, and settled,
//     once V8's memory reducer has run (it shrinks the heap about 8 s after allocation
//     stops; an agent idles for hours, so the settled figure is the one it keeps)
//   npm run bench -- runtime [N]      (the runtime gets the node flags PM2 passes for memory_limit_mb, on its
//                                      command line as PM2 does; BENCH_NODE_ARGS replaces them, e.g. '' for none)
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { agentIdFromUuid } from '../src/core/agent-id.js';
import { deployAgent } from '../src/instances/deploy.js';
import { agentPaths, type AgentPaths } from '../src/home/layout.js';
import { openDatabase } from '../src/store/database.js';
import { storeInbound } from '../src/store/inbound.js';
import { pokeRuntime } from '../src/runtime/wake-socket.js';
import { parseSettingsJson, serializeSettings } from '../src/config/settings.js';
import { writeFileAtomic } from '../src/core/fs.js';
import { startLettaServer } from '../test/helpers/letta-server.js';
import { runtimeNodeFlags } from '../src/process/node-flags.js';
import { defaultSettings } from '../src/config/settings.js';
import { fmt, median, percentile, scratch, table } from './lib.js';

const N = Number(process.argv[2] ?? 1000);
const LATENCY_SAMPLES = 300;
const KEY = 'sk-bench-key-0123456789';
const { dir, cleanup } = scratch('runtime');
const children: ChildProcess[] = [];
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? runtimeNodeFlags(defaultSettings({ agentId: '' }).memory_limit_mb).join(' ')).split(' ').filter(Boolean);

async function deploy(home: string, endpoint: string): Promise<AgentPaths> {
  const agent = agentIdFromUuid(randomUUID());
  await deployAgent({ home, agent, mode: 'live', endpoint, apiKey: KEY, env: {}, processManager: 'pm2' });
  const paths = agentPaths(home, agent);
  const settings = parseSettingsJson(readFileSync(paths.settings, 'utf8'), paths.settings);
  settings.max_retries = 0;
  await writeFileAtomic(paths.settings, serializeSettings(settings));
  return paths;
}

interface Runtime {
  child: ChildProcess;
  onCompleted: (item: number, at: number) => void;
  ready: Promise<void>;
}

function start(paths: AgentPaths): Runtime {
  const child = spawn(process.execPath, [...NODE_ARGS, join(paths.clone, 'main.js')], { cwd: paths.dir, env: { PATH: process.env.PATH ?? '', ANIMUS_LOG_STDOUT: '1' }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const runtime: Runtime = { child, onCompleted: () => {}, ready: Promise.resolve() };
  let partial = '';
  let markReady!: () => void;
  runtime.ready = new Promise((resolve) => (markReady = resolve));
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const at = performance.now();
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.includes('"runtime ready"')) markReady();
      if (!line.includes('"item completed"')) continue;
      const item = /"item":(\d+)/.exec(line)?.[1];
      if (item) runtime.onCompleted(Number(item), at);
    }
  });
  return runtime;
}

function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
}

/** CPU time a process has used so far (user + system, every thread), in ms. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}
const CLOCK_TICKS = 100;
/** V8's memory reducer runs about 8 s after an instance stops allocating; this leaves it room on a loaded machine. */
const SETTLE_MS = 15_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

try {
  const letta = await startLettaServer({ apiKey: KEY });
  letta.reply = () => 'ok';
  const home = join(dir, 'home');
  const busy = await deploy(home, letta.url);
  const idle = await deploy(home, letta.url);

  const runtime = start(busy);
  await runtime.ready;
  const db = openDatabase(busy.db);
  const store = (text: string) => {
    const result = storeInbound(db, { platform: 'local', platformUserId: 'bench', username: 'bench', text });
    if (result.status !== 'queued') throw new Error('not queued');
    return result.queueId;
  };

  // Latency: one message at a time, so queueing does not count.
  const callsBefore = letta.requests.length;
  const lettaTime = new Map<string, number>();
  letta.onMessage = undefined;
  const added: number[] = [];
  const total: number[] = [];
  for (let i = 0; i < LATENCY_SAMPLES + 20; i++) {
    const text = `latency ${i}`;
    const done = new Promise<number>((resolve) => (runtime.onCompleted = (_item, at) => resolve(at)));
    const t0 = performance.now();
    store(text);
    await pokeRuntime(busy.dir);
    const t3 = await done;
    const request = letta.messageRequests().at(-1)!;
    const inLetta = (request.answeredAt ?? request.at) - request.at;
    lettaTime.set(text, inLetta);
    // The first messages load the Letta client and warm the JIT: not steady state.
    if (i >= 20) {
      added.push(t3 - t0 - inLetta);
      total.push(t3 - t0);
    }
  }

  const callsPerMessage = (letta.requests.length - callsBefore) / (LATENCY_SAMPLES + 20);

  // Throughput: N messages queued at once.
  let completed = 0;
  let finished!: () => void;
  const allDone = new Promise<void>((resolve) => (finished = resolve));
  runtime.onCompleted = () => {
    if (++completed === N) finished();
  };
  const cpuStart = cpuMs(runtime.child.pid!);
  const tStart = performance.now();
  db.transaction(() => {
    for (let i = 0; i < N; i++) store(`throughput ${i}`);
  })();
  await pokeRuntime(busy.dir);
  await allDone;
  const seconds = (performance.now() - tStart) / 1000;
  const cpuPerMessage = (cpuMs(runtime.child.pid!) - cpuStart) / N;
  db.close();

  // RSS: a fresh instance (nothing processed yet), the loaded one and a bare node, read together.
  const bare = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  children.push(bare);
  const fresh = start(idle);
  await fresh.ready;
  const readRss = () => ({ idle: rssKiB(fresh.child.pid!), bare: rssKiB(bare.pid!), busy: rssKiB(runtime.child.pid!) });
  await sleep(3000);
  const early = readRss();
  await sleep(SETTLE_MS - 3000);
  const settled = readRss();
  const mib = (kib: number) => `${fmt(kib / 1024)} MiB`;
  const ratio = (kib: number, bareKib: number) => `${fmt(kib / bareKib)}x`;

  console.log(`runtime bench: one agent, live mode, zero-latency Letta stand-in on 127.0.0.1 (node ${process.version}; runtime flags "${NODE_ARGS.join(' ')}")\n`);
  console.log(
    table([
      { figure: 'throughput', value: `${fmt(N / seconds)} msg/s`, detail: `${N} messages queued at once, ${fmt(seconds)} s`, goal: '>= 200 msg/s' },
      { figure: 'added latency p50', value: `${fmt(median(added))} ms`, detail: `${LATENCY_SAMPLES} sequential messages; end to end p50 ${fmt(median(total))} ms`, goal: '< 5 ms' },
      { figure: 'added latency p99', value: `${fmt(percentile(added, 99))} ms`, detail: `end to end p99 ${fmt(percentile(total, 99))} ms`, goal: '' },
      { figure: 'runtime CPU per message', value: `${fmt(cpuPerMessage)} ms`, detail: `user + system, all threads, over the ${N} queued messages`, goal: '' },
      { figure: 'Letta calls per message', value: fmt(callsPerMessage), detail: 'POST async, GET run until it ends, GET messages and usage', goal: '' },
      { figure: 'idle RSS (fresh instance)', value: mib(settled.idle), detail: `${ratio(settled.idle, settled.bare)} bare node (${mib(settled.bare)}), settled; ${ratio(early.idle, early.bare)} 3 s after start`, goal: '<= 1.3x bare node' },
      { figure: 'RSS after the load', value: mib(settled.busy), detail: `${ratio(settled.busy, settled.bare)} bare node after ${N + LATENCY_SAMPLES + 20} messages, settled; ${ratio(early.busy, early.bare)} just after it`, goal: '<= 1.5x bare node' },
    ]),
  );
  await letta.close();
} finally {
  for (const child of children) if (child.pid && child.exitCode === null) process.kill(child.pid, 'SIGTERM');
  await sleep(300);
  cleanup();
}
