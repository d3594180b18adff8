import { constants, existsSync, readFileSync } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { AnimusError, describeError } from '../core/errors.js';
import { ensureAgentDir, ensureAgentFile } from '../core/agent-fs.js';
import { trimLog } from './trim-log.js';
import { isAlive } from '../core/pid.js';
import { runPool } from '../core/pool.js';
import { LOGS_DIR, type AgentPaths } from '../home/layout.js';
import { readSettings } from '../instances/agent-files.js';
import { agentLogTail } from './log-tail.js';
import { instanceEnv, scrubbedEnv } from './process-env.js';
import { runtimeNodeFlags } from './node-flags.js';
import { noteRequestedRestart, readRequestedRestarts } from './restart-ledger.js';
import { resolveRuntimeEntry } from './runtime-entry.js';
import type { ProcessActionResult, ProcessInfo, ProcessManager, ProcessState } from './types.js';
import { withTimeout } from '../core/timeout.js';

/** What is kept of runtime.err.log when it grows past log_max_mb. */
const ERR_LOG_KEEP_BYTES = 256 * 1024;

/** The runtime's own limit is 10 s from SIGTERM; PM2 waits a little longer before SIGKILL. */
export const KILL_TIMEOUT_MS = 15_000;
/** Exit code of a runtime that refuses its configuration: restarting cannot help. */
export const CONFIG_ERROR_EXIT = 78;
/** First restart delay; PM2 grows it ×1.5 per crash up to 15 s and resets it after 30 s up. */
export const BACKOFF_START_MS = 100;
/** A start counts only if the process is still the same process this long after it came online. */
export const DEFAULT_START_GRACE_MS = 1_500;
const START_TIMEOUT_MS = 30_000;
const POLL_MS = 200;
const CONCURRENCY = 8;

export function pm2ProcessName(paths: AgentPaths): string {
  return `animus-${paths.agent.uuid}`;
}

export function resolvePm2Home(env: NodeJS.ProcessEnv): string {
  return env.PM2_HOME && env.PM2_HOME !== '' ? env.PM2_HOME : join(env.HOME ?? homedir(), '.pm2');
}

/** What PM2 reports about one process (the part of `pm2 jlist` animus reads). */
interface Pm2Process {
  name?: string;
  pid?: number;
  pm_id?: number;
  monit?: { memory?: number; cpu?: number };
  pm2_env?: {
    status?: string;
    pm_uptime?: number;
    restart_time?: number;
    /** PM2's id for a registered process: kept across restarts, stop and start; new when registered again. */
    unique_id?: string;
    exit_code?: number;
    pm_cwd?: string;
    pm_exec_path?: string;
    pm_out_log_path?: string;
    pm_err_log_path?: string;
    max_memory_restart?: number;
    node_args?: string[];
    env?: Record<string, unknown>;
  };
}

/** The subset of pm2's API object used here, promisified in `call`. */
interface Pm2Api {
  connect(cb: (error?: Error | null) => void): void;
  disconnect(): void;
  start(options: object, cb: (error: Error | null, result?: unknown) => void): void;
  stop(name: string, cb: (error: Error | null) => void): void;
  restart(name: string, cb: (error: Error | null) => void): void;
  delete(name: string, cb: (error: Error | null) => void): void;
  list(cb: (error: Error | null, list?: Pm2Process[]) => void): void;
  dump(force: boolean, cb: (error: Error | null) => void): void;
}

export interface Pm2Options {
  env?: NodeJS.ProcessEnv;
  /** The animus home: where the restarts animus requests are noted (see restart-ledger.ts). */
  home?: string;
  startGraceMs?: number;
}

/**
 * PM2 through its programmatic API. One connection per manager (so per command),
 * opened lazily and closed by `close()`, whatever the number of agents.
 */
export class Pm2Manager implements ProcessManager {
  readonly name = 'pm2' as const;
  readonly pm2Home: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly graceMs: number;
  private readonly home: string | undefined;
  private api: Pm2Api | undefined;
  private connecting: Promise<Pm2Api> | undefined;

  constructor(options: Pm2Options = {}) {
    this.env = options.env ?? process.env;
    this.pm2Home = resolvePm2Home(this.env);
    this.graceMs = options.startGraceMs ?? DEFAULT_START_GRACE_MS;
    this.home = options.home;
  }

  async start(agents: AgentPaths[]): Promise<ProcessActionResult[]> {
    return this.launch(agents, 'start');
  }

  async restart(agents: AgentPaths[]): Promise<ProcessActionResult[]> {
    return this.launch(agents, 'restart');
  }

  async stop(agents: AgentPaths[]): Promise<ProcessActionResult[]> {
    if (!this.api && !this.daemonAlive()) return agents.map((paths) => ({ id: paths.agent.id, outcome: 'already', message: 'not registered with PM2', info: notRegistered(paths.agent.id) }));
    const api = await this.connect();
    const known = await this.listOwned(api, agents);
    const outcomes = await runPool(agents, CONCURRENCY, async (paths): Promise<ProcessActionResult> => {
      const proc = known.get(pm2ProcessName(paths));
      const id = paths.agent.id;
      if (!proc) return { id, outcome: 'already', message: 'not registered with PM2', info: notRegistered(id) };
      if (isStoppedStatus(proc.pm2_env?.status)) return { id, outcome: 'already', message: 'already stopped', info: toInfo(id, proc) };
      await call<void>((cb) => api.stop(pm2ProcessName(paths), cb), `stop ${id}`);
      return { id, outcome: 'done', info: { ...toInfo(id, proc), state: 'stopped', pid: undefined, memoryBytes: undefined, cpuPercent: undefined, uptimeMs: undefined } };
    });
    const results = outcomes.map((o, i) => (o.ok ? o.value : failed(agents[i]!.agent.id, o.error)));
    if (results.some((r) => r.outcome === 'done')) await this.keepSavedListCurrent(api);
    return results;
  }

  async unregister(agents: AgentPaths[]): Promise<void> {
    if (!this.api && !this.daemonAlive()) return;
    const api = await this.connect();
    const known = await this.listOwned(api, agents);
    let deleted = 0;
    for (const paths of agents) {
      if (!known.has(pm2ProcessName(paths))) continue;
      await call<void>((cb) => api.delete(pm2ProcessName(paths), cb), `delete ${paths.agent.id}`);
      deleted++;
    }
    if (deleted > 0) await this.keepSavedListCurrent(api);
  }

  async status(agents?: AgentPaths[]): Promise<ProcessInfo[]> {
    // Asking must not spawn a daemon: without one, nothing runs.
    if (!this.api && !this.daemonAlive()) return (agents ?? []).map((paths) => notRegistered(paths.agent.id));
    const list = this.api ? await this.list(this.api) : await this.listReadOnly();
    const requested = this.home ? readRequestedRestarts(this.home) : new Map<string, number>();
    const withCrashes = (info: ProcessInfo, proc: Pm2Process): ProcessInfo => ({
      ...info,
      crashRestarts: Math.max(0, (info.restarts ?? 0) - (requested.get(`${proc.name} ${proc.pm2_env?.unique_id}`) ?? 0)),
    });
    if (!agents) {
      return list.filter((p) => /^animus-[0-9a-f-]{36}$/.test(p.name ?? '')).map((p) => withCrashes(toInfo(`agent-${p.name!.slice('animus-'.length)}`, p), p));
    }
    const byName = new Map(list.map((p) => [p.name, p]));
    return agents.map((paths) => {
      const proc = byName.get(pm2ProcessName(paths));
      if (!proc || !ownedBy(proc, paths)) return notRegistered(paths.agent.id);
      return withCrashes(toInfo(paths.agent.id, proc), proc);
    });
  }

  async prepareStatus(): Promise<void> {
    await import('./pm2-rpc.js');
  }

  /** Whether a PM2 daemon runs for this PM2_HOME (its pid file names a live process). */
  daemonAlive(): boolean {
    let pid: number;
    try {
      pid = Number.parseInt(readFileSync(join(this.pm2Home, 'pm2.pid'), 'utf8'), 10);
    } catch {
      return false;
    }
    return Number.isInteger(pid) && pid > 0 && isAlive(pid);
  }

  /** `pm2 save`: writes the process list PM2 resurrects at boot. */
  async save(): Promise<void> {
    const api = await this.connect();
    await call<void>((cb) => api.dump(false, cb), 'save the process list');
  }

  /**
   * Once a list was saved (`animus startup`, or `pm2 save`), each change to the fleet
   * saves it again: a stale list brings removed agents back at boot and leaves new
   * ones down. Without a saved list nothing is written: boot is not animus's to arm.
   * The list may be empty then (the last agent removed), which PM2 saves only forced.
   */
  private async keepSavedListCurrent(api: Pm2Api): Promise<void> {
    if (!existsSync(join(this.pm2Home, 'dump.pm2'))) return;
    try {
      await call<void>((cb) => api.dump(true, cb), 'save the process list');
    } catch (error) {
      throw new AnimusError('EPM', `the agents changed, but PM2's saved list (for boot) could not be updated (${describeError(error)}): run \`animus startup\` again`, { cause: error });
    }
  }

  async close(): Promise<void> {
    const connecting = this.connecting;
    this.connecting = undefined;
    this.api = undefined;
    if (!connecting) return;
    try {
      (await connecting).disconnect();
    } catch {
      // Never connected: nothing to release.
    }
  }

  private async launch(agents: AgentPaths[], verb: 'start' | 'restart'): Promise<ProcessActionResult[]> {
    const api = await this.connect();
    const known = await this.listOwned(api, agents);
    const submitted = await runPool(agents, CONCURRENCY, async (paths): Promise<ProcessActionResult | 'submitted'> => {
      const id = paths.agent.id;
      const name = pm2ProcessName(paths);
      const proc = known.get(name);
      if (verb === 'start' && proc && proc.pm2_env?.status === 'online') {
        return { id, outcome: 'already', message: 'already running', info: toInfo(id, proc) };
      }
      const app = await this.appConfig(paths);
      if (proc && !sameConfig(proc, app)) {
        // PM2 keeps the script, cwd and limits it was first given; a changed entry point
        // or memory limit only applies to a freshly registered process.
        await call<void>((cb) => api.delete(name, cb), `re-register ${id}`);
        await call((cb) => api.start(app, cb), `start ${id}`);
      } else if (proc) {
        // PM2 adds one to restart_time only when it restarts a running process.
        const status = proc.pm2_env?.status;
        if (this.home && (status === 'online' || status === 'launching')) noteRequestedRestart(this.home, name, proc.pm2_env?.unique_id);
        await restartSettled(api, name, `${verb} ${id}`);
      } else {
        await call((cb) => api.start(app, cb), `start ${id}`);
      }
      return 'submitted';
    });
    const results: Array<ProcessActionResult | undefined> = submitted.map((o, i) =>
      !o.ok ? failed(agents[i]!.agent.id, o.error) : o.value === 'submitted' ? undefined : o.value,
    );
    const pending = agents.filter((_, i) => results[i] === undefined);
    // The pid before a restart is not proof of anything: only a new process counts.
    const previous = new Map(pending.flatMap((paths) => {
      const pid = known.get(pm2ProcessName(paths))?.pid;
      return pid ? [[paths.agent.id, pid] as const] : [];
    }));
    const verified = await this.verify(api, pending, previous);
    for (const [i, paths] of agents.entries()) {
      if (results[i] === undefined) results[i] = verified.get(paths.agent.id)!;
    }
    if (pending.length > 0) await this.keepSavedListCurrent(api);
    return results as ProcessActionResult[];
  }

  /**
   * Waits until each process has been online, as the same pid, for the grace period;
   * one `list` per poll for all of them. A process that exits, restarts or never comes
   * up fails, is stopped (no crash loop is left behind) and reports its log's tail.
   */
  private async verify(api: Pm2Api, agents: AgentPaths[], previousPids: Map<string, number>): Promise<Map<string, ProcessActionResult>> {
    const results = new Map<string, ProcessActionResult>();
    const firstOnline = new Map<string, { pid: number; at: number }>();
    const deadline = Date.now() + this.graceMs + START_TIMEOUT_MS;
    let waiting = [...agents];
    while (waiting.length > 0) {
      const byName = new Map((await this.list(api)).map((p) => [p.name, p]));
      const now = Date.now();
      const still: AgentPaths[] = [];
      for (const paths of waiting) {
        const id = paths.agent.id;
        const proc = byName.get(pm2ProcessName(paths));
        const status = proc?.pm2_env?.status;
        const seen = firstOnline.get(id);
        if (status === 'online' && proc?.pid && proc.pid === previousPids.get(id) && !seen && now <= deadline) {
          still.push(paths);
        } else if (status === 'online' && proc?.pid) {
          if (!seen) {
            firstOnline.set(id, { pid: proc.pid, at: now });
            still.push(paths);
          } else if (seen.pid !== proc.pid) {
            results.set(id, await this.failedStart(api, paths, proc, 'exited and was restarted while starting'));
          } else if (now - seen.at >= this.graceMs) {
            results.set(id, { id, outcome: 'done', info: toInfo(id, proc) });
          } else {
            still.push(paths);
          }
        } else if (!proc) {
          results.set(id, await this.failedStart(api, paths, proc, 'disappeared from PM2 while starting'));
        } else if (status === 'errored' || status === 'stopped' || status === 'waiting restart' || (seen && status !== 'online')) {
          results.set(id, await this.failedStart(api, paths, proc, exitReason(proc)));
        } else if (now > deadline) {
          results.set(id, await this.failedStart(api, paths, proc, `did not come online within ${Math.round((this.graceMs + START_TIMEOUT_MS) / 1000)} s`));
        } else {
          still.push(paths);
        }
      }
      waiting = still;
      if (waiting.length > 0) await sleep(POLL_MS);
    }
    return results;
  }

  private async failedStart(api: Pm2Api, paths: AgentPaths, proc: Pm2Process | undefined, reason: string): Promise<ProcessActionResult> {
    const name = pm2ProcessName(paths);
    if (proc) await call<void>((cb) => api.stop(name, cb), `stop ${paths.agent.id}`).catch(() => {});
    const logTail = await agentLogTail(paths, 10);
    const hint = proc?.pm2_env?.exit_code === CONFIG_ERROR_EXIT ? ': fix its .env or settings.json (see the log lines below), then start it again' : `: see \`animus logs ${paths.agent.id}\``;
    return {
      id: paths.agent.id,
      outcome: 'failed',
      code: 'EFAILED',
      message: `${paths.agent.id} did not stay up: it ${reason}${hint}`,
      logTail,
      info: proc ? { ...toInfo(paths.agent.id, proc), state: 'stopped', pid: undefined } : notRegistered(paths.agent.id),
    };
  }

  private async appConfig(paths: AgentPaths): Promise<Record<string, unknown>> {
    const [script, settings] = await Promise.all([resolveRuntimeEntry(paths), readSettings(paths)]);
    // PM2 would create them 0644; made first, they keep 0600 (PM2 only appends).
    // Never through a link: a logs/ pointing outside the home is refused, not chmod'ed or written.
    ensureAgentDir(paths.dir, LOGS_DIR);
    const errLog = paths.errLog.slice(paths.dir.length + 1);
    ensureAgentFile(paths.dir, errLog);
    // PM2 only appends start-up errors and crashes here; bounded at each start (PM2 appends with O_APPEND).
    trimLog(paths.dir, errLog, settings.log_max_mb * 1024 * 1024, ERR_LOG_KEEP_BYTES);
    return {
      name: pm2ProcessName(paths),
      script,
      cwd: paths.dir,
      interpreter: process.execPath,
      node_args: runtimeNodeFlags(settings.memory_limit_mb),
      exec_mode: 'fork',
      // No copy of the caller's environment, only what instanceEnv allows. PM2 7 ignores
      // `filter_env: true`; a list drops every caller key containing one of its strings,
      // and every key contains ''. test/process/pm2.test.ts proves no key gets through.
      filter_env: [''],
      env: instanceEnv(paths, this.env),
      // The runtime writes and rotates logs/runtime.log itself (runtime/log-file.ts): PM2 keeps
      // no fd on a file that rotation renames. Its stdout holds nothing PM2 must keep.
      out_file: '/dev/null',
      error_file: paths.errLog,
      merge_logs: true,
      autorestart: true,
      exp_backoff_restart_delay: BACKOFF_START_MS,
      stop_exit_codes: [CONFIG_ERROR_EXIT],
      kill_timeout: KILL_TIMEOUT_MS,
      max_memory_restart: `${settings.memory_limit_mb}M`,
      // The cwd holds a git clone: PM2's versioning probe would read it at every start.
      vizion: false,
      pmx: false,
      automation: false,
      treekill: true,
    };
  }

  /** This home's processes among the given agents, by name; a same-named process of another folder is a conflict. */
  private async listOwned(api: Pm2Api, agents: AgentPaths[]): Promise<Map<string, Pm2Process>> {
    const byName = new Map((await this.list(api)).map((p) => [p.name, p]));
    const owned = new Map<string, Pm2Process>();
    for (const paths of agents) {
      const name = pm2ProcessName(paths);
      const proc = byName.get(name);
      if (!proc) continue;
      if (!ownedBy(proc, paths)) {
        throw new AnimusError(
          'EPM',
          `PM2 already runs a process named ${name} from ${proc.pm2_env?.pm_cwd ?? 'another folder'}, not ${paths.dir}: stop it there, or use a separate PM2_HOME for this home`,
        );
      }
      owned.set(name, proc);
    }
    return owned;
  }

  /** Over the daemon's socket without loading PM2's API; falls back to the API if that fails. */
  private async listReadOnly(): Promise<Pm2Process[]> {
    try {
      const { listOverRpc } = await import('./pm2-rpc.js');
      return await listOverRpc<Pm2Process>(this.pm2Home);
    } catch {
      return this.list(await this.connect());
    }
  }

  private async list(api: Pm2Api): Promise<Pm2Process[]> {
    return (await call<Pm2Process[]>((cb) => api.list(cb), 'list processes')) ?? [];
  }

  private connect(): Promise<Pm2Api> {
    if (this.api) return Promise.resolve(this.api);
    this.connecting ??= this.openConnection();
    return this.connecting;
  }

  private async openConnection(): Promise<Pm2Api> {
    // PM2 creates its folder with sync calls that crash the process on failure: make
    // sure it can exist first, and say so in one line when it cannot.
    try {
      await mkdir(this.pm2Home, { recursive: true, mode: 0o700 });
      await access(this.pm2Home, constants.W_OK);
    } catch (error) {
      throw new AnimusError('ENOPM', `PM2 cannot use ${this.pm2Home} (${(error as NodeJS.ErrnoException).code ?? describeError(error)}): point PM2_HOME at a writable folder`, { cause: error });
    }
    // A daemon spawned now inherits process.env: hand it one without secrets. PM2 also
    // reads PM2_HOME from it while loading.
    // PM2 prints progress to stdout unless PM2_PROGRAMMATIC is set when it logs.
    process.env.PM2_PROGRAMMATIC = 'true';
    const saved = process.env;
    // PM2's stop signal is the daemon's (PM2_KILL_SIGNAL, else SIGINT): a daemon started
    // here uses SIGTERM, the runtime's graceful-exit signal.
    process.env = { PM2_KILL_SIGNAL: 'SIGTERM', ...scrubbedEnv(saved), PM2_HOME: this.pm2Home };
    try {
      let Api: new (options: object) => Pm2Api;
      try {
        // Heavy: loaded only by the commands that talk to PM2. lib/API, not the package
        // index, whose default instance would set up ~/.pm2 as a side effect.
        const specifier = 'pm2/lib/API.js';
        Api = ((await import(specifier)) as unknown as { default: new (options: object) => Pm2Api }).default;
      } catch (error) {
        throw new AnimusError('ENOPM', `the pm2 package cannot be loaded (${describeError(error)}): reinstall animus (npm install)`, { cause: error });
      }
      const api = new Api({ pm2_home: this.pm2Home, daemon_mode: true });
      try {
        await withTimeout(call<void>((cb) => api.connect(cb), 'connect'), 30_000, 'connecting took longer than 30 s');
      } catch (error) {
        throw new AnimusError('ENOPM', `cannot reach or start the PM2 daemon in ${this.pm2Home} (${describeError(error).replace(/^PM2 could not connect: /, '')}): check that the folder is writable, or set PM2_HOME`, { cause: error });
      }
      this.api = api;
      return api;
    } finally {
      process.env = saved;
    }
  }
}

function call<T>(fn: (cb: (error: Error | null | undefined, value?: T) => void) => void, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    try {
      fn((error, value) => {
        if (error) {
          const message = describeError(error);
          reject(new AnimusError('EPM', `PM2 could not ${what}: ${message}`, { cause: error }));
        } else resolve(value as T);
      });
    } catch (error) {
      reject(new AnimusError('EPM', `PM2 could not ${what}: ${describeError(error)}`, { cause: error }));
    }
  });
}

/**
 * PM2 refuses to start a process it still holds a pid for outside `online` and
 * `launching` ("Process with pid N already exists"): one caught between a crash, its
 * own pending restart and a stop. Seen once in a loaded run, right after a failed start
 * was stopped. Stopping it again lets go of that pid; then the restart goes through.
 */
async function restartSettled(api: Pm2Api, name: string, what: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await call<void>((cb) => api.restart(name, cb), what);
      return;
    } catch (error) {
      if (attempt >= 3 || !/already exists/.test(describeError(error))) throw error;
      await call<void>((cb) => api.stop(name, cb), what).catch(() => {});
      await sleep(POLL_MS * attempt);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function ownedBy(proc: Pm2Process, paths: AgentPaths): boolean {
  return proc.pm2_env?.pm_cwd === undefined || proc.pm2_env.pm_cwd === paths.dir;
}

function sameConfig(proc: Pm2Process, app: Record<string, unknown>): boolean {
  const env = proc.pm2_env ?? {};
  const limit = Number.parseInt(String(app.max_memory_restart), 10) * 1024 * 1024;
  // An environment registered by another version (or by hand) may carry more than
  // instanceEnv allows, secrets included: it is replaced, not restarted with.
  const wanted = app.env as Record<string, string>;
  const registered = env.env ?? {};
  const extra = Object.keys(registered).filter((key) => !(key in wanted) && key !== 'PM2_HOME' && key !== 'unique_id' && key !== proc.name);
  const sameEnv = extra.length === 0 && Object.entries(wanted).every(([key, value]) => registered[key] === value);
  return sameEnv && env.pm_exec_path === app.script && env.pm_cwd === app.cwd && env.pm_out_log_path === app.out_file && env.pm_err_log_path === app.error_file && env.max_memory_restart === limit && String(env.node_args ?? '') === String(app.node_args);
}

function isStoppedStatus(status: string | undefined): boolean {
  return status === 'stopped' || status === 'errored' || status === 'one-launch-status';
}

function exitReason(proc: Pm2Process): string {
  const code = proc.pm2_env?.exit_code;
  if (code === CONFIG_ERROR_EXIT) return `exited with code ${CONFIG_ERROR_EXIT} (configuration error)`;
  if (typeof code === 'number') return `exited with code ${code}`;
  return `is ${proc.pm2_env?.status ?? 'not running'}`;
}

export function mapPm2Status(status: string | undefined): ProcessState {
  switch (status) {
    case 'online':
      return 'online';
    case 'launching':
      return 'starting';
    case 'stopping':
      return 'stopping';
    case 'stopped':
    case 'one-launch-status':
      return 'stopped';
    // Crashed and waiting out its backoff: an operator should see it as a failure.
    case 'waiting restart':
    case 'errored':
      return 'errored';
    default:
      return 'unknown';
  }
}

function toInfo(id: string, proc: Pm2Process): ProcessInfo {
  const env = proc.pm2_env ?? {};
  const state = mapPm2Status(env.status);
  const online = state === 'online';
  return {
    id,
    manager: 'pm2',
    state,
    pid: online && proc.pid ? proc.pid : undefined,
    uptimeMs: online && env.pm_uptime ? Math.max(0, Date.now() - env.pm_uptime) : undefined,
    restarts: env.restart_time ?? 0,
    memoryBytes: online ? proc.monit?.memory : undefined,
    cpuPercent: online ? proc.monit?.cpu : undefined,
  };
}

function notRegistered(id: string): ProcessInfo {
  return { id, manager: 'pm2', state: 'not-registered' };
}

function failed(id: string, error: unknown): ProcessActionResult {
  return { id, outcome: 'failed', message: describeError(error), code: error instanceof AnimusError ? error.code : 'EINTERNAL' };
}
