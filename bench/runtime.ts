// The agent runtime under load, against a zero-latency Letta stand-in on 127.0.0.1:
//   - messages/s through one agent (N messages queued at once, live mode; the end is read from
//     the database, so that no process is woken by each line the runtime logs)
//   - the runtime's added latency per message, p50/p99: from the message being stored
//     (as a plugin or `animus send` stores it, with the wake poke) to the runtime's
//     "item completed" line, minus the time the stand-in took to answer
//   - the runtime's CPU time per message (user + system, all its threads, from /proc) while
//     it works through the N queued messages: less sensitive to a loaded machine than the
//     wall-clock figures, which a busy neighbour stretches
//   - Letta calls per message (what the stand-in received, over the sequential messages)
//   - the same four figures for the async lane (the runtime against a stand-in without background
//     streams: POST async, then polling), measured first, in the same run, as the baseline
//   - RSS of a fresh idle instance and of the loaded one, next to an idle bare `node`, all
//     three read at the same moments: 3 s after the fresh instance is ready, and settled,
//     once V8's memory reducer has run (it shrinks the heap about 8 s after allocation
//     stops; an agent idles for hours, so the settled figure is the one it keeps)
//   npm run bench -- runtime [N]      (the runtime gets the node flags PM2 passes for memory_limit_mb, on its
//                                      command line as PM2 does; BENCH_NODE_ARGS replaces them, e.g. '' for none)
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync, watch, type FSWatcher } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { dirname, join } from 'node:path';
import { agentIdFromUuid } from '../src/core/agent-id.js';
import { deployAgent } from '../src/instances/deploy.js';
import { agentPaths, type AgentPaths } from '../src/home/layout.js';
import { openDatabase } from '../src/store/database.js';
import { storeInbound } from '../src/store/inbound.js';
import { pokeRuntime } from '../src/runtime/wake-socket.js';
import { parseSettingsJson, serializeSettings } from '../src/config/settings.js';
import { writeFileAtomic } from '../src/core/fs.js';
import { startLettaServer, type LettaServer } from '../test/helpers/letta-server.js';
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
  /** Stops or starts following its log (see measureLane's throughput). */
  follow: (on: boolean) => void;
}

/**
 * Starts the runtime as PM2 runs it: its stdout goes nowhere (PM2's out_file is /dev/null)
 * and it writes its JSON lines to logs/runtime.log, which is followed here as an operator's
 * `animus logs -f` follows it. BENCH_LOG_STDOUT=1 reads its stdout instead (ANIMUS_LOG_STDOUT,
 * as the test harness runs it): each line is then a write to a pipe as well.
 */
function start(paths: AgentPaths): Runtime {
  const viaStdout = process.env.BENCH_LOG_STDOUT === '1';
  const child = spawn(process.execPath, [...NODE_ARGS, join(paths.clone, 'main.js')], { cwd: paths.dir, env: { PATH: process.env.PATH ?? '', ...(viaStdout ? { ANIMUS_LOG_STDOUT: '1' } : {}) }, stdio: ['ignore', viaStdout ? 'pipe' : 'ignore', 'inherit'] });
  children.push(child);
  const runtime: Runtime = { child, onCompleted: () => {}, ready: Promise.resolve(), follow: () => {} };
  let partial = '';
  let markReady!: () => void;
  runtime.ready = new Promise((resolve) => (markReady = resolve));
  const onText = (chunk: string) => {
    const at = performance.now();
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      if (line.includes('"runtime ready"')) markReady();
      if (!line.includes('"item completed"')) continue;
      const item = /"item":(\d+)/.exec(line)?.[1];
      if (item) runtime.onCompleted(Number(item), at);
    }
  };
  if (viaStdout) child.stdout!.setEncoding('utf8').on('data', onText);
  else runtime.follow = followFile(join(paths.logs, 'runtime.log'), onText, child);
  return runtime;
}

/**
 * Calls onText with what is appended to `path` (made by the runtime once it starts) until
 * `child` exits; the returned switch stops and restarts the following (what was appended
 * meanwhile is read at the restart).
 */
function followFile(path: string, onText: (text: string) => void, child: ChildProcess): (on: boolean) => void {
  let fd: number | undefined;
  let offset = 0;
  const buffer = Buffer.alloc(1 << 16);
  const decoder = new StringDecoder('utf8');
  const read = () => {
    try {
      fd ??= openSync(path, 'r');
    } catch {
      return; // Not made yet.
    }
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, offset);
      if (n === 0) return;
      offset += n;
      onText(decoder.write(buffer.subarray(0, n)));
    }
  };
  let watcher: FSWatcher | undefined;
  let poll: NodeJS.Timeout | undefined;
  const follow = (on: boolean) => {
    watcher?.close();
    clearInterval(poll);
    watcher = undefined;
    if (!on) return;
    // The folder is watched (the file does not exist before the runtime makes it); a slow poll backs up a missed event.
    watcher = watch(dirname(path), read);
    poll = setInterval(read, 50);
    read();
  };
  follow(true);
  child.once('exit', () => {
    follow(false);
    if (fd !== undefined) closeSync(fd);
  });
  return follow;
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

interface LaneFigures {
  messagesPerSecond: number;
  seconds: number;
  added: number[];
  total: number[];
  cpuPerMessage: number;
  callsPerMessage: number;
}

/** Latency (one message at a time) then throughput (N queued at once) through one running agent. */
async function measureLane(paths: AgentPaths, runtime: Runtime, letta: LettaServer): Promise<LaneFigures> {
  const db = openDatabase(paths.db);
  const store = (text: string) => {
    const result = storeInbound(db, { platform: 'local', platformUserId: 'bench', username: 'bench', text });
    if (result.status !== 'queued') throw new Error('not queued');
    return result.queueId;
  };
  try {
    // Latency: one message at a time, so queueing does not count.
    const callsBefore = letta.requests.length;
    letta.onMessage = undefined;
    const added: number[] = [];
    const total: number[] = [];
    for (let i = 0; i < LATENCY_SAMPLES + 20; i++) {
      const done = new Promise<number>((resolve) => (runtime.onCompleted = (_item, at) => resolve(at)));
      const t0 = performance.now();
      store(`latency ${i}`);
      await pokeRuntime(paths.dir);
      const t3 = await done;
      const request = letta.messageRequests().at(-1)!;
      const inLetta = (request.answeredAt ?? request.at) - request.at;
      // The first messages load the Letta client and warm the JIT: not steady state.
      if (i >= 20) {
        added.push(t3 - t0 - inLetta);
        total.push(t3 - t0);
      }
    }
    const callsPerMessage = (letta.requests.length - callsBefore) / (LATENCY_SAMPLES + 20);

    // Throughput: N messages queued at once. The end is read from the database every 5 ms, not
    // from the log: a process woken by each line the runtime writes (a watched file, a pipe) costs
    // the runtime a cross-process wake-up per message, and in production nobody does that.
    runtime.follow(false);
    runtime.onCompleted = () => {};
    const countDone = db.prepare("SELECT COUNT(*) AS n FROM queue WHERE status = 'completed' AND id > ?").pluck();
    const cpuStart = cpuMs(runtime.child.pid!);
    const tStart = performance.now();
    const last = db.transaction(() => {
      let id = 0;
      for (let i = 0; i < N; i++) id = store(`throughput ${i}`);
      return id;
    })();
    await pokeRuntime(paths.dir);
    while ((countDone.get(last - N) as number) < N) await sleep(5);
    const seconds = (performance.now() - tStart) / 1000;
    runtime.follow(true);
    return { messagesPerSecond: N / seconds, seconds, added, total, cpuPerMessage: (cpuMs(runtime.child.pid!) - cpuStart) / N, callsPerMessage };
  } finally {
    db.close();
  }
}

try {
  const letta = await startLettaServer({ apiKey: KEY });
  letta.reply = () => 'ok';
  // The baseline in the same run: a server without background streams, where the runtime sends
  // async and polls the run (the only lane before session 6; still the fallback).
  const polled = await startLettaServer({ apiKey: KEY, streamRoute: 'no-route' });
  polled.reply = () => 'ok';
  const home = join(dir, 'home');
  const busy = await deploy(home, letta.url);
  const idle = await deploy(home, letta.url);
  const baseline = await deploy(home, polled.url);

  const asyncRuntime = start(baseline);
  await asyncRuntime.ready;
  const asyncLane = await measureLane(baseline, asyncRuntime, polled);
  asyncRuntime.child.kill('SIGTERM');
  await new Promise((resolve) => asyncRuntime.child.once('exit', resolve));

  const runtime = start(busy);
  await runtime.ready;
  const lane = await measureLane(busy, runtime, letta);
  const { added, total, seconds, cpuPerMessage, callsPerMessage } = lane;

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

  console.log(`runtime bench: one agent, live mode, zero-latency Letta stand-in on 127.0.0.1 (node ${process.version}; runtime flags "${NODE_ARGS.join(' ')}"); the async lane is a second agent against a stand-in without background streams, measured first in the same run\n`);
  console.log(
    table([
      { figure: 'throughput', value: `${fmt(lane.messagesPerSecond)} msg/s`, detail: `${N} messages queued at once, ${fmt(seconds)} s; async lane ${fmt(asyncLane.messagesPerSecond)} msg/s`, goal: '>= 200 msg/s' },
      { figure: 'added latency p50', value: `${fmt(median(added))} ms`, detail: `${LATENCY_SAMPLES} sequential messages; end to end p50 ${fmt(median(total))} ms; async lane ${fmt(median(asyncLane.added))} ms`, goal: '< 5 ms' },
      { figure: 'added latency p99', value: `${fmt(percentile(added, 99))} ms`, detail: `end to end p99 ${fmt(percentile(total, 99))} ms; async lane ${fmt(percentile(asyncLane.added, 99))} ms`, goal: '' },
      { figure: 'runtime CPU per message', value: `${fmt(cpuPerMessage)} ms`, detail: `user + system, all threads, over the ${N} queued messages; async lane ${fmt(asyncLane.cpuPerMessage)} ms`, goal: '' },
      { figure: 'Letta calls per message', value: fmt(callsPerMessage), detail: `one background stream a message; async lane ${fmt(asyncLane.callsPerMessage)} (POST async, GET run until it ends, GET messages and usage)`, goal: '' },
      { figure: 'idle RSS (fresh instance)', value: mib(settled.idle), detail: `${ratio(settled.idle, settled.bare)} bare node (${mib(settled.bare)}), settled; ${ratio(early.idle, early.bare)} 3 s after start`, goal: '<= 1.3x bare node' },
      { figure: 'RSS after the load', value: mib(settled.busy), detail: `${ratio(settled.busy, settled.bare)} bare node after ${N + LATENCY_SAMPLES + 20} messages, settled; ${ratio(early.busy, early.bare)} just after it`, goal: '<= 1.5x bare node' },
    ]),
  );
  await letta.close();
  await polled.close();
} finally {
  for (const child of children) if (child.pid && child.exitCode === null) process.kill(child.pid, 'SIGTERM');
  await sleep(300);
  cleanup();
}
