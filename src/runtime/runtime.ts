import type { Database } from 'better-sqlite3';
import { describeError } from '../core/errors.js';
import { redactText } from '../core/redact.js';
import type { PluginName, Settings } from '../config/settings.js';
import { openDatabase } from '../store/database.js';
import { storeInbound } from '../store/inbound.js';
import { schemaVersion } from '../store/migrations.js';
import { CircuitBreaker } from './circuit-breaker.js';
import { checkSettingsAgainstEnv, ConfigError, EXIT_CONFIG, loadRuntimeConfig, resolveLogLevel, type RuntimeConfig } from './config.js';
import { DeliveryWorker } from './delivery.js';
import { LettaClient } from '../letta/client.js';
import { RuntimeStateWriter } from '../instances/runtime-state.js';
import { LettaState } from './letta-state.js';
import { acquireLock, type LockOutcome } from './lock.js';
import { openLogSink, type LogSink } from './log-file.js';
import { createLogger, errorText } from './logger.js';
import { createLocalPlugin } from './plugins/local.js';
import { createGramJsAdapter, type MtprotoAdapterFactory } from './plugins/mtproto-adapter.js';
import { PluginRegistry } from './plugins/registry.js';
import { createTelegramBotPlugin } from './plugins/telegram-bot.js';
import { createTelegramUserPlugin } from './plugins/telegram-user.js';
import type { PluginContext, PluginFactory } from './plugins/types.js';
import { SettingsWatcher } from './settings-watcher.js';
import { readTuning } from './tuning.js';
import { QueueWorker } from './worker.js';
import { VERSION } from '../core/version.js';
import { containerSettings, replicaProblem, serveStatus, type RuntimeStatus } from './container.js';
import { isoTime } from '../core/time.js';


export interface RuntimeOptions {
  env: NodeJS.ProcessEnv;
  cwd: string;
  stderr?: (line: string) => void;
  /** Replaces the MTProto library (tests). */
  mtproto?: MtprotoAdapterFactory;
}

export interface RunningRuntime {
  /** Resolves with the exit code once the runtime has stopped. */
  finished: Promise<number>;
  stop(reason: string): Promise<number>;
  /** An uncaught error: logged (redacted), lock released, exit 1 so the process manager restarts it. */
  crash(error: unknown): never;
}

/** After this, shutdown stops waiting: anything unfinished is recovered at the next start. */
const STOP_DEADLINE_MS = 9500;

/** Validates, locks, opens and starts everything; returns the exit code at once on a configuration error. */
export async function startRuntime(options: RuntimeOptions): Promise<RunningRuntime | number> {
  const stderr = options.stderr ?? ((line: string) => process.stderr.write(`${line}\n`));
  let config: RuntimeConfig;
  try {
    config = loadRuntimeConfig(options.env, options.cwd);
  } catch (error) {
    const problems = error instanceof ConfigError ? error.problems : [describeError(error)];
    // No secret list yet: anything shaped like a key or token is masked (core/redact).
    for (const problem of problems) stderr(`animus-runtime: ${redactText(problem)}`);
    return EXIT_CONFIG;
  }
  let lock: LockOutcome;
  try {
    lock = await acquireLock(config.agentDir);
  } catch (error) {
    stderr(`animus-runtime: cannot create the lock in ${config.agentDir} (${(error as NodeJS.ErrnoException).code ?? 'error'}: ${describeError(error)}): the agent folder must be writable by the runtime's user`);
    return EXIT_CONFIG;
  }
  if (!lock.ok) {
    stderr(`animus-runtime: another runtime (${lock.holder ? `pid ${lock.holder}` : 'pid unknown: perhaps in another container'}) already serves ${config.agentDir}: stop it first (its lock is ${lock.path})`);
    return EXIT_CONFIG;
  }
  const redact = (text: string) => redactText(text, config.secrets);
  let sink: LogSink;
  try {
    sink = openLogSink({ agentDir: config.agentDir, target: config.settings.log_target, maxMb: config.settings.log_max_mb, keep: config.settings.log_keep, env: options.env });
  } catch (error) {
    lock.lock.release();
    stderr(`animus-runtime: cannot open its log: ${redact(describeError(error))}`);
    return EXIT_CONFIG;
  }
  let db: Database;
  try {
    db = openDatabase(config.dbPath);
    // A small page cache (512 KiB; SQLite's default is 2 MiB): the queue's hot rows are few, and an instance's memory bounds a fleet.
    db.pragma('cache_size = -512');
  } catch (error) {
    lock.lock.release();
    sink.close();
    stderr(`animus-runtime: ${redact(describeError(error))}`);
    return EXIT_CONFIG;
  }

  let settings: Settings = config.settings;
  const logger = createLogger({ agent: config.agentId, level: config.logLevel, secrets: config.secrets, write: (line) => sink.write(line) });
  logger.info('runtime starting', { version: VERSION, pid: process.pid, mode: settings.message_mode, db: config.dbPath, schema: schemaVersion(db), node: process.version });

  const tuning = readTuning(config.env);
  const breaker = new CircuitBreaker({
    threshold: tuning.breakerThreshold,
    cooldownMs: tuning.breakerCooldownMs,
    maxCooldownMs: tuning.breakerMaxCooldownMs,
    onChange: (state, detail) => {
      const fields = { circuit: state, failures: detail.failures, retry_at: detail.retryAt ? isoTime(detail.retryAt) : undefined };
      if (state === 'open') logger.error('agent endpoint keeps failing: circuit open, requests paused', fields);
      else if (state === 'half-open') logger.warn('circuit half-open: probing the agent endpoint with one request', fields);
      else logger.info('agent endpoint answering again: circuit closed', fields);
    },
  });

  // What health and status show about this runtime (runtime-state.json), one section per concern.
  const runtimeState = new RuntimeStateWriter(config.agentDir, (error) => logger.warn('cannot write runtime-state.json', { error: redact(errorText(error)) }));
  const lettaState = new LettaState(runtimeState, config.agentId);
  let client: LettaClient | undefined;
  const lettaClient = async () => {
    client ??= new LettaClient({ endpoint: config.env.AGENT_ENDPOINT ?? '', apiKey: config.env.AGENT_API_KEY ?? '', agentId: config.agentId });
    return client;
  };

  let worker: QueueWorker | undefined;
  let delivery: DeliveryWorker | undefined;
  const pluginContext: PluginContext = {
    agentDir: config.agentDir,
    agentId: config.agentId,
    db,
    env: config.env,
    logger,
    settings: () => settings,
    store: (message) => {
      const result = storeInbound(db, message);
      if (result.status === 'queued') worker?.wake();
      if (result.status === 'answered') delivery?.wake();
      return result;
    },
    wake: () => worker?.wake(),
    redact,
    state: runtimeState,
  };
  const factories: Record<PluginName, PluginFactory> = {
    local: createLocalPlugin,
    telegram_bot: createTelegramBotPlugin,
    telegram_user: (ctx) => createTelegramUserPlugin(ctx, options.mtproto ?? createGramJsAdapter),
  };
  const plugins = new PluginRegistry(pluginContext, factories);

  worker = new QueueWorker({
    db,
    logger,
    agentId: config.agentId,
    settings: () => settings,
    client: lettaClient,
    breaker,
    state: lettaState,
    redact,
    retryBaseMs: tuning.retryBaseMs,
    retryMaxMs: tuning.retryMaxMs,
    rateLimitBaseMs: tuning.rateLimitBaseMs,
    pollMaxMs: tuning.runPollMaxMs,
    recoverEveryMs: tuning.recoverEveryMs,
    onReply: () => delivery?.wake(),
  });
  delivery = new DeliveryWorker({
    db,
    logger,
    plugins,
    refreshMs: () => settings.queue_refresh * 1000,
    redact,
    retryBaseMs: tuning.deliveryRetryBaseMs,
    retryMaxMs: tuning.deliveryRetryMaxMs,
    maxAttempts: tuning.deliveryMaxAttempts,
  });

  worker.recover();

  const watcher = new SettingsWatcher({
    path: config.settingsPath,
    pollMs: tuning.settingsPollMs,
    check: (next) => checkSettingsAgainstEnv(next, config.env, config.agentId),
    onRejected: (problems) => logger.error('settings.json change refused; the previous settings stay in force', { problems }),
    onChange: async (next) => {
      const previous = settings;
      settings = next;
      logger.level = resolveLogLevel(config.env, next) ?? logger.level;
      logger.info('settings reloaded', { changed: changedKeys(previous, next), mode: next.message_mode });
      await plugins.reconcile(next);
      worker?.wake();
      delivery?.wake();
    },
  });
  await watcher.start();
  await plugins.reconcile(settings);
  logger.info('runtime ready', { mode: settings.message_mode, plugins: Object.keys(plugins.health()) });

  let stopping: Promise<number> | undefined;
  const loops = Promise.all([worker.run(), delivery.run()]);
  const stop = (reason: string): Promise<number> => {
    stopping ??= (async () => {
      logger.info('runtime stopping', { reason });
      const deadline = setTimeout(() => {
        logger.warn('shutdown deadline reached; unfinished work is recovered at next start');
        db.close();
        lock.lock.release();
        process.exit(0);
      }, STOP_DEADLINE_MS);
      deadline.unref();
      watcher.close();
      await worker!.stop(tuning.stopGraceMs);
      await delivery!.stop(1000);
      await loops;
      await plugins.stopAll();
      clearTimeout(deadline);
      client?.close();
      runtimeState.remove();
      db.close();
      lock.lock.release();
      logger.info('runtime stopped', { reason });
      sink.close();
      return 0;
    })();
    return stopping;
  };
  const finished = loops.then(
    () => stopping ?? 0,
    async (error: unknown) => {
      logger.error('runtime failed', { error: redact(errorText(error)) });
      await stop('internal error').catch(() => {});
      return 1;
    },
  );
  const crash = (error: unknown): never => {
    logger.error('internal error: the runtime stops; unfinished work is recovered at the next start', { error: redact(errorText(error)) });
    try {
      db.close();
    } catch {
      // Closing is a courtesy: SQLite's journal makes an unclosed file safe.
    }
    lock.lock.release();
    process.exit(1);
  };
  return { finished, stop, crash };
}

/** Runs until SIGTERM/SIGINT; returns the process exit code. */
export async function runRuntime(options: RuntimeOptions): Promise<number> {
  process.umask(0o077);
  // Handlers go in before anything starts: a SIGTERM during start-up is a clean stop too.
  let requested: NodeJS.Signals | undefined;
  let running: RunningRuntime | undefined;
  let signalled: () => void = () => {};
  const stopRequested = new Promise<void>((resolve) => (signalled = resolve));
  const onSignal = (signal: NodeJS.Signals) => {
    requested ??= signal;
    signalled();
    if (running) void running.stop(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const onCrash = (error: unknown) => {
    if (running) running.crash(error);
    process.stderr.write(`animus-runtime: internal error during start-up: ${scrubTokens(error instanceof Error ? error.message : String(error))}\n`);
    process.exit(1);
  };
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);
  const container = containerSettings(options.env);
  if (!container) {
    const started = await startRuntime(options);
    if (typeof started === 'number') return started;
    running = started;
    if (requested) void running.stop(requested);
    return running.finished;
  }

  // In a container: the probes ask the status socket; a configuration error holds "not ready".
  const write = options.stderr ?? ((line: string) => process.stderr.write(`${line}\n`));
  let status: RuntimeStatus = { ready: false, reasons: ['starting'], pid: process.pid };
  await serveStatus(container.statusSocket, () => status).catch((error: unknown) => write(`animus-runtime: no status socket at ${container.statusSocket} (${describeError(error)}): the probes will fail`));
  const problems: string[] = [];
  const stderr = (line: string) => {
    problems.push(line.replace(/^animus-runtime: /, ''));
    write(line);
  };
  const replica = replicaProblem(container);
  const started = replica === undefined ? await startRuntime({ ...options, stderr }) : (stderr(`animus-runtime: ${replica}`), EXIT_CONFIG);
  if (typeof started === 'number') {
    if (started !== EXIT_CONFIG) return started;
    status = { ready: false, reasons: problems, pid: process.pid };
    write(`animus-runtime: not ready: ${problems.join('; ')} (it stays up and not ready; fix the cause, then delete the pod)`);
    const hold = setInterval(() => {}, 1 << 30);
    await stopRequested;
    clearInterval(hold);
    return 0;
  }
  running = started;
  status = { ready: true, reasons: [], pid: process.pid };
  if (requested) void running.stop(requested);
  void stopRequested.then(() => {
    status = { ready: false, reasons: ['stopping'], pid: process.pid };
  });
  return running.finished;
}

/** Before the .env is known there is no list of secrets: mask what looks like a bot token or API key. */
export function scrubTokens(text: string): string {
  return redactText(text).split('\n')[0]!;
}

function changedKeys(a: unknown, b: unknown, prefix = ''): string[] {
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return a === b ? [] : [prefix];
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].flatMap((key) => changedKeys((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key], prefix ? `${prefix}.${key}` : key));
}

