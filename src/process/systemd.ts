import { execa } from 'execa';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { AnimusError, describeError } from '../core/errors.js';
import { pathExists, writeFileAtomic } from '../core/fs.js';
import type { AgentPaths } from '../home/layout.js';
import { readSettings } from '../instances/agent-files.js';
import { agentLogTail } from './log-tail.js';
import { CONFIG_ERROR_EXIT, DEFAULT_START_GRACE_MS } from './pm2.js';
import { detectScope, dropInPath, instanceUnit, renderDropIn, renderUnits, TARGET_UNIT, TEMPLATE_UNIT, unitDirectory, type SystemdScope } from './systemd-units.js';
import type { ProcessActionResult, ProcessInfo, ProcessManager, ProcessState } from './types.js';

const START_TIMEOUT_MS = 30_000;
const POLL_MS = 250;

/** sd_booted(): systemd is PID 1 and running (not so in most containers). */
export async function systemdRunning(): Promise<boolean> {
  return pathExists('/run/systemd/system');
}

export async function assertSystemd(): Promise<void> {
  if (!(await systemdRunning())) {
    throw new AnimusError(
      'ENOSYSTEMD',
      'systemd is not running on this machine (a container?): nothing was changed; use PM2 instead (`animus settings set --agent <id> process_manager pm2`), or `animus systemd render --out DIR` to review the units',
    );
  }
}

export function defaultScope(): SystemdScope {
  return process.getuid?.() === 0 ? 'system' : 'user';
}

export interface SystemdOptions {
  home: string;
  env?: NodeJS.ProcessEnv;
  scope?: SystemdScope;
  startGraceMs?: number;
}

export interface InstallResult {
  scope: SystemdScope;
  unitDir: string;
  files: string[];
}

/** `animus systemd install`: writes the units, reloads systemd and enables the fleet's target. */
export async function installUnits(options: SystemdOptions & { user?: string }): Promise<InstallResult> {
  await assertSystemd();
  const scope = options.scope ?? defaultScope();
  const env = options.env ?? process.env;
  const unitDir = unitDirectory(scope, env);
  const units = await renderUnits({ home: options.home, scope, user: options.user });
  await mkdir(unitDir, { recursive: true });
  const files: string[] = [];
  for (const unit of units) {
    const path = join(unitDir, unit.name);
    await writeFileAtomic(path, unit.content, 0o644);
    files.push(path);
  }
  await systemctl(scope, ['daemon-reload']);
  await systemctl(scope, ['enable', TARGET_UNIT]);
  return { scope, unitDir, files };
}

/** systemd through `systemctl`; stateless, so `close` has nothing to release. */
export class SystemdManager implements ProcessManager {
  readonly name = 'systemd' as const;
  readonly scope: SystemdScope;
  private readonly env: NodeJS.ProcessEnv;
  private readonly graceMs: number;

  constructor(options: SystemdOptions) {
    this.env = options.env ?? process.env;
    this.scope = options.scope ?? detectScope(this.env);
    this.graceMs = options.startGraceMs ?? DEFAULT_START_GRACE_MS;
  }

  get unitDir(): string {
    return unitDirectory(this.scope, this.env);
  }

  async start(agents: AgentPaths[]): Promise<ProcessActionResult[]> {
    return this.launch(agents, 'start');
  }

  async restart(agents: AgentPaths[]): Promise<ProcessActionResult[]> {
    return this.launch(agents, 'restart');
  }

  async stop(agents: AgentPaths[]): Promise<ProcessActionResult[]> {
    await assertSystemd();
    const before = await this.show(agents);
    const toStop = agents.filter((_, i) => isRunning(before[i]!.state));
    if (toStop.length > 0) await systemctl(this.scope, ['stop', ...toStop.map((a) => instanceUnit(a.agent.uuid))]);
    const after = toStop.length > 0 ? await this.show(agents) : before;
    return agents.map((paths, i) => {
      const id = paths.agent.id;
      if (!isRunning(before[i]!.state)) return { id, outcome: 'already', message: before[i]!.state === 'not-registered' ? 'not registered with systemd' : 'already stopped', info: before[i] };
      return { id, outcome: 'done', info: after[i] };
    });
  }

  async unregister(agents: AgentPaths[]): Promise<void> {
    await assertSystemd();
    const units = agents.map((a) => instanceUnit(a.agent.uuid));
    await systemctl(this.scope, ['disable', '--now', ...units]).catch(() => {});
    for (const paths of agents) await rm(dirname(dropInPath(this.unitDir, paths.agent.uuid)), { recursive: true, force: true });
    await systemctl(this.scope, ['daemon-reload']);
    await systemctl(this.scope, ['reset-failed', ...units]).catch(() => {});
  }

  async status(agents?: AgentPaths[]): Promise<ProcessInfo[]> {
    await assertSystemd();
    return agents ? this.show(agents) : [];
  }

  async close(): Promise<void> {
    // Nothing held open.
  }

  /** Writes each agent's drop-in and enables its unit (started with animus.target at boot), without starting it. */
  async enable(agents: AgentPaths[]): Promise<void> {
    await this.assertInstalled();
    await this.writeDropIns(agents);
    await systemctl(this.scope, ['daemon-reload']);
    await systemctl(this.scope, ['enable', ...agents.map((a) => instanceUnit(a.agent.uuid))]);
  }

  private async assertInstalled(): Promise<void> {
    await assertSystemd();
    if (!(await pathExists(join(this.unitDir, TEMPLATE_UNIT)))) {
      throw new AnimusError('ENOSYSTEMD', `${TEMPLATE_UNIT} is not installed in ${this.unitDir}: run \`animus systemd install${this.scope === 'system' ? ' --system' : ''}\` first`);
    }
  }

  /** Settings may have changed since the last start: refresh each agent's drop-in. */
  private async writeDropIns(agents: AgentPaths[]): Promise<void> {
    for (const paths of agents) {
      const settings = await readSettings(paths);
      const file = dropInPath(this.unitDir, paths.agent.uuid);
      await mkdir(dirname(file), { recursive: true });
      await writeFileAtomic(file, renderDropIn(settings), 0o644);
    }
  }

  private async launch(agents: AgentPaths[], verb: 'start' | 'restart'): Promise<ProcessActionResult[]> {
    await this.assertInstalled();
    const before = await this.show(agents);
    const results: Array<ProcessActionResult | undefined> = agents.map((paths, i) =>
      verb === 'start' && before[i]!.state === 'online' ? { id: paths.agent.id, outcome: 'already', message: 'already running', info: before[i] } : undefined,
    );
    const todo = agents.filter((_, i) => results[i] === undefined);
    if (todo.length === 0) return results as ProcessActionResult[];
    await this.writeDropIns(todo);
    const units = todo.map((a) => instanceUnit(a.agent.uuid));
    await systemctl(this.scope, ['daemon-reload']);
    await systemctl(this.scope, ['enable', ...units]);
    await systemctl(this.scope, ['reset-failed', ...units]).catch(() => {});
    await systemctl(this.scope, [verb === 'start' ? 'start' : 'restart', '--no-block', ...units]);
    const verified = await this.verify(todo);
    for (const [i, paths] of agents.entries()) results[i] ??= verified.get(paths.agent.id);
    return results as ProcessActionResult[];
  }

  private async verify(agents: AgentPaths[]): Promise<Map<string, ProcessActionResult>> {
    const results = new Map<string, ProcessActionResult>();
    const firstSeen = new Map<string, { pid: number; at: number }>();
    const deadline = Date.now() + this.graceMs + START_TIMEOUT_MS;
    let waiting = agents;
    while (waiting.length > 0) {
      const infos = await this.showRaw(waiting);
      const now = Date.now();
      const still: AgentPaths[] = [];
      for (const [i, paths] of waiting.entries()) {
        const raw = infos[i]!;
        const id = paths.agent.id;
        const pid = Number(raw.MainPID ?? 0);
        const seen = firstSeen.get(id);
        if (raw.ActiveState === 'active' && raw.SubState === 'running' && pid > 0) {
          if (!seen) {
            firstSeen.set(id, { pid, at: now });
            still.push(paths);
          } else if (seen.pid !== pid) results.set(id, await this.failedStart(paths, raw, 'exited and was restarted while starting'));
          else if (now - seen.at >= this.graceMs) results.set(id, { id, outcome: 'done', info: toInfo(id, raw) });
          else still.push(paths);
        } else if (raw.ActiveState === 'failed' || (raw.ActiveState === 'inactive' && raw.Result !== undefined && raw.Result !== 'success') || (seen && raw.ActiveState !== 'active')) {
          results.set(id, await this.failedStart(paths, raw, exitReason(raw)));
        } else if (now > deadline) {
          results.set(id, await this.failedStart(paths, raw, `did not come online within ${Math.round((this.graceMs + START_TIMEOUT_MS) / 1000)} s`));
        } else still.push(paths);
      }
      waiting = still;
      if (waiting.length > 0) await new Promise((r) => setTimeout(r, POLL_MS));
    }
    return results;
  }

  private async failedStart(paths: AgentPaths, raw: Record<string, string>, reason: string): Promise<ProcessActionResult> {
    await systemctl(this.scope, ['stop', instanceUnit(paths.agent.uuid)]).catch(() => {});
    const settings = await readSettings(paths).catch(() => undefined);
    const logTail = settings?.log_target === 'journal' ? await this.journalTail(paths, 10) : await agentLogTail(paths, 10);
    const hint = Number(raw.ExecMainStatus) === CONFIG_ERROR_EXIT ? ': fix its .env or settings.json (see the log lines below), then start it again' : `: see \`animus logs ${paths.agent.id}\``;
    return { id: paths.agent.id, outcome: 'failed', code: 'EFAILED', message: `${paths.agent.id} did not stay up: it ${reason}${hint}`, logTail, info: { ...toInfo(paths.agent.id, raw), state: 'stopped' } };
  }

  async journalTail(paths: AgentPaths, lines: number): Promise<string[]> {
    const result = await execa('journalctl', [...(this.scope === 'user' ? ['--user'] : []), '-u', instanceUnit(paths.agent.uuid), '-n', String(lines), '-o', 'cat', '--no-pager'], { reject: false });
    return result.exitCode === 0 ? result.stdout.split('\n').filter((l) => l !== '') : [];
  }

  private async show(agents: AgentPaths[]): Promise<ProcessInfo[]> {
    const raws = await this.showRaw(agents);
    return agents.map((paths, i) => toInfo(paths.agent.id, raws[i]!));
  }

  /** One `systemctl show` for all the units: blocks of KEY=value separated by blank lines, in order. */
  private async showRaw(agents: AgentPaths[]): Promise<Array<Record<string, string>>> {
    if (agents.length === 0) return [];
    const properties = 'Id,LoadState,ActiveState,SubState,Result,MainPID,NRestarts,ExecMainStartTimestampMonotonic,ExecMainStatus,MemoryCurrent,CPUUsageNSec,UnitFileState';
    const out = await systemctl(this.scope, ['show', `--property=${properties}`, ...agents.map((a) => instanceUnit(a.agent.uuid))]);
    const blocks = out.trim().split(/\n\s*\n/).map((block) => Object.fromEntries(block.split('\n').map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)])));
    const byId = new Map(blocks.map((b) => [b.Id, b]));
    return agents.map((a) => byId.get(instanceUnit(a.agent.uuid)) ?? {});
  }
}

async function systemctl(scope: SystemdScope, args: string[]): Promise<string> {
  try {
    const result = await execa('systemctl', [...(scope === 'user' ? ['--user'] : []), ...args], { reject: false });
    if (result.exitCode !== 0) {
      throw new AnimusError('EPM', `systemctl ${args[0]} failed: ${describeError(result.stderr || result.stdout || `exit ${result.exitCode}`)}`);
    }
    return result.stdout;
  } catch (error) {
    if (error instanceof AnimusError) throw error;
    throw new AnimusError('ENOSYSTEMD', `cannot run systemctl (${describeError(error)}): is systemd installed?`, { cause: error });
  }
}

function mapState(raw: Record<string, string>): ProcessState {
  if (raw.LoadState === undefined || raw.LoadState === 'not-found') return 'not-registered';
  switch (raw.ActiveState) {
    case 'active':
      return raw.SubState === 'running' ? 'online' : 'starting';
    case 'activating':
    case 'reloading':
      return raw.SubState === 'auto-restart' ? 'errored' : 'starting';
    case 'deactivating':
      return 'stopping';
    case 'inactive':
      // unregister disables: an inactive unit that is not enabled is not part of the fleet.
      return raw.UnitFileState === 'enabled' ? 'stopped' : 'not-registered';
    case 'failed':
      return 'errored';
    default:
      return 'unknown';
  }
}

function isRunning(state: ProcessState): boolean {
  return state === 'online' || state === 'starting' || state === 'errored';
}

function exitReason(raw: Record<string, string>): string {
  const code = Number(raw.ExecMainStatus);
  if (code === CONFIG_ERROR_EXIT) return `exited with code ${CONFIG_ERROR_EXIT} (configuration error)`;
  if (Number.isFinite(code) && code !== 0) return `exited with code ${code}`;
  return `is ${raw.ActiveState ?? 'not running'} (${raw.Result ?? 'unknown'})`;
}

function toInfo(id: string, raw: Record<string, string>): ProcessInfo {
  const state = mapState(raw);
  const online = state === 'online';
  const pid = Number(raw.MainPID);
  const memory = Number(raw.MemoryCurrent);
  const startedMonotonicUs = Number(raw.ExecMainStartTimestampMonotonic);
  return {
    id,
    manager: 'systemd',
    state,
    pid: online && pid > 0 ? pid : undefined,
    uptimeMs: online && startedMonotonicUs > 0 ? Math.max(0, Math.round(monotonicNowMs() - startedMonotonicUs / 1000)) : undefined,
    restarts: Number.isFinite(Number(raw.NRestarts)) ? Number(raw.NRestarts) : undefined,
    // NRestarts counts only the restarts Restart= made, never `systemctl restart`.
    crashRestarts: Number.isFinite(Number(raw.NRestarts)) ? Number(raw.NRestarts) : undefined,
    memoryBytes: online && Number.isFinite(memory) && memory < 2 ** 63 ? memory : undefined,
  };
}

/** CLOCK_MONOTONIC in ms, the clock of systemd's *Monotonic timestamps (from /proc/uptime's base). */
function monotonicNowMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}
