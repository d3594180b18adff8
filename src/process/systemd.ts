import { loadExeca } from '../core/execa.js';
import { chmod, chown, lstat, mkdir, rm } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { AnimusError, describeError } from '../core/errors.js';
import { pathExists, writeFileAtomic } from '../core/fs.js';
import { agentPaths, homeLayout, type AgentPaths } from '../home/layout.js';
import { readSettings } from '../instances/agent-files.js';
import { withAgentLock } from '../instances/operation-lock.js';
import { scanAgentFolders } from '../instances/registry.js';
import { agentLogTail } from './log-tail.js';
import { CONFIG_ERROR_EXIT, DEFAULT_START_GRACE_MS } from './pm2.js';
import { chownTree, createSystemAccount, lookupAccount, refuseRoot, type Account } from './systemd-account.js';
import { detectScope, dropInPath, installedAccountName, instanceUnit, renderDropIn, renderUnits, unitDirectory, unitNames, type SystemdScope, type UnitNames } from './systemd-units.js';
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
  /** The home's unit names: the template, its target. */
  units: UnitNames;
  /** System scope: the account the agents run as, and whether install created it. */
  account?: { name: string; group: string; created: boolean };
  /** Agent folders given to the account (system scope, run by root). */
  chowned: string[];
  /** Things the operator should know: units left by an earlier animus. */
  notes: string[];
}

/**
 * `animus systemd install`: writes the home's units, reloads systemd, gives the home's
 * systemd agents to their account, and enables and starts the home's target, so the fleet
 * is up now and after every boot. Agents never run as root: a system install needs an
 * unprivileged account (`--run-as`, created with `--create-user`), and root's own user
 * manager is refused.
 */
export async function installUnits(options: SystemdOptions & { user?: string; createUser?: boolean }): Promise<InstallResult> {
  await assertSystemd();
  const scope = options.scope ?? defaultScope();
  const env = options.env ?? process.env;
  const home = resolve(options.home);
  let account: InstallResult['account'];
  let owner: Account | undefined;
  if (scope === 'user') {
    if (options.createUser) throw new AnimusError('EUSAGE', '--create-user only applies to --system: a user manager runs agents as its own user');
    if (process.getuid?.() === 0) refuseRoot("root's own user manager");
  } else {
    const name = options.user ?? defaultAccountName();
    if (name === 'root') refuseRoot(name);
    let found = await lookupAccount(name);
    const created = !found && options.createUser === true;
    if (!found) {
      if (!options.createUser) throw new AnimusError('EUSAGE', `the account ${name} does not exist: create it (useradd --system ${name}) or add --create-user`);
      found = await createSystemAccount(name);
    }
    if (found.uid === 0) refuseRoot(name);
    owner = found;
    account = { name: found.name, group: found.group, created };
  }
  const unitDir = unitDirectory(scope, env);
  const units = await renderUnits({ home, scope, user: owner?.name, group: owner?.group });
  await mkdir(unitDir, { recursive: true });
  const files: string[] = [];
  for (const unit of units) {
    const path = join(unitDir, unit.name);
    await writeFileAtomic(path, unit.content, 0o644);
    files.push(path);
  }
  const chowned = owner ? await grantHome(home, owner) : [];
  await systemctl(scope, ['daemon-reload']);
  const names = unitNames(home);
  await systemctl(scope, ['enable', '--now', names.target]);
  return { scope, unitDir, files, units: names, account, chowned, notes: await legacyNotes(unitDir) };
}

/** Units of an animus from before units were named per home: shared by every home, left for the operator. */
async function legacyNotes(unitDir: string): Promise<string[]> {
  if (!(await pathExists(join(unitDir, 'animus-agent@.service')))) return [];
  return [
    `${join(unitDir, 'animus-agent@.service')} (one template for every home, from an earlier animus) is still installed: once each home has run \`animus systemd install\`, remove it with systemctl disable --now animus.target 'animus-agent@*' and delete it and animus.target`,
  ];
}

/** The default account of a system install: the invoking user, also under sudo. */
function defaultAccountName(): string {
  return process.env.SUDO_USER && process.env.SUDO_USER !== '' ? process.env.SUDO_USER : userInfo().username;
}

/**
 * Root installing for an account: the home becomes listable by the account's group (so
 * `animus logs|status|list` work as the account) and every systemd agent folder in it is
 * the account's, as the files its runtime makes will be.
 */
async function grantHome(home: string, account: Account): Promise<string[]> {
  if (process.getuid?.() !== 0) return [];
  const info = await lstat(home).catch(() => undefined);
  if (!info?.isDirectory()) return [];
  if (info.uid === 0) {
    await chown(home, 0, account.gid);
    await chmod(home, 0o750);
    // The account takes its agents' operation locks too (send, settings set, and stop to be
    // told it needs root): the state folder is traversable by its group, the lock folder
    // writable by it (setgid, so root's locks share the group).
    const { stateDir } = homeLayout(home);
    const locks = join(stateDir, 'locks');
    await mkdir(locks, { recursive: true, mode: 0o700 });
    if ((await lstat(stateDir)).uid === 0) {
      await chown(stateDir, 0, account.gid);
      await chmod(stateDir, 0o750);
      await chown(locks, 0, account.gid);
      await chmod(locks, 0o2770);
    }
  }
  const chowned: string[] = [];
  for (const folder of await scanAgentFolders(home)) {
    if (!folder.agent) continue;
    const paths = agentPaths(home, folder.agent);
    const settings = await readSettings(paths).catch(() => undefined);
    if (settings?.process_manager !== 'systemd') continue;
    await withAgentLock(paths, { command: 'systemd install' }, () => chownTree(paths.dir, account.uid, account.gid));
    chowned.push(paths.dir);
  }
  return chowned;
}

/** systemd through `systemctl`; stateless, so `close` has nothing to release. */
export class SystemdManager implements ProcessManager {
  readonly name = 'systemd' as const;
  readonly scope: SystemdScope;
  readonly units: UnitNames;
  private readonly home: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly graceMs: number;

  constructor(options: SystemdOptions) {
    this.env = options.env ?? process.env;
    this.home = resolve(options.home);
    this.units = unitNames(this.home);
    this.scope = options.scope ?? detectScope(this.env, this.home);
    this.graceMs = options.startGraceMs ?? DEFAULT_START_GRACE_MS;
  }

  private unit(paths: AgentPaths): string {
    return instanceUnit(this.home, paths.agent.uuid);
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
    if (toStop.length > 0) await systemctl(this.scope, ['stop', ...toStop.map((a) => this.unit(a))]);
    const after = toStop.length > 0 ? await this.show(agents) : before;
    return agents.map((paths, i) => {
      const id = paths.agent.id;
      if (!isRunning(before[i]!.state)) return { id, outcome: 'already', message: before[i]!.state === 'not-registered' ? 'not registered with systemd' : 'already stopped', info: before[i] };
      return { id, outcome: 'done', info: after[i] };
    });
  }

  async unregister(agents: AgentPaths[]): Promise<void> {
    await assertSystemd();
    const units = agents.map((a) => this.unit(a));
    await systemctl(this.scope, ['disable', '--now', ...units]).catch(() => {});
    for (const paths of agents) await rm(dirname(dropInPath(this.unitDir, this.home, paths.agent.uuid)), { recursive: true, force: true });
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
    await systemctl(this.scope, ['enable', ...agents.map((a) => this.unit(a))]);
  }

  private async assertInstalled(): Promise<void> {
    await assertSystemd();
    if (!(await pathExists(join(this.unitDir, this.units.template)))) {
      throw new AnimusError('ENOSYSTEMD', `${this.units.template} (the units of ${this.home}) is not installed in ${this.unitDir}: run \`animus systemd install${this.scope === 'system' ? ' --system --run-as <account>' : ''}\` first`);
    }
  }

  /**
   * Settings may have changed since the last start: refresh each agent's drop-in. Root
   * starting a system unit first gives the agent's folder to the unit's account, so a
   * folder deployed by root after `install` is the account's too.
   */
  private async writeDropIns(agents: AgentPaths[]): Promise<void> {
    const owner = this.scope === 'system' && process.getuid?.() === 0 ? await this.installedAccount() : undefined;
    for (const paths of agents) {
      if (owner) await chownTree(paths.dir, owner.uid, owner.gid);
      const settings = await readSettings(paths);
      const file = dropInPath(this.unitDir, this.home, paths.agent.uuid);
      await mkdir(dirname(file), { recursive: true });
      await writeFileAtomic(file, renderDropIn(settings), 0o644);
    }
  }

  private async installedAccount(): Promise<Account | undefined> {
    const name = await installedAccountName(this.unitDir, this.home);
    const account = name ? await lookupAccount(name) : undefined;
    if (account?.uid === 0) refuseRoot(account.name);
    return account;
  }

  private async launch(agents: AgentPaths[], verb: 'start' | 'restart'): Promise<ProcessActionResult[]> {
    await this.assertInstalled();
    const raws = await this.showRaw(agents);
    const before = agents.map((paths, i) => toInfo(paths.agent.id, raws[i]!));
    const results: Array<ProcessActionResult | undefined> = agents.map((paths, i) =>
      verb === 'start' && before[i]!.state === 'online' ? { id: paths.agent.id, outcome: 'already', message: 'already running', info: before[i] } : undefined,
    );
    const todo = agents.filter((_, i) => results[i] === undefined);
    if (todo.length === 0) return results as ProcessActionResult[];
    await this.writeDropIns(todo);
    const units = todo.map((a) => this.unit(a));
    await systemctl(this.scope, ['daemon-reload']);
    await systemctl(this.scope, ['enable', ...units]);
    await systemctl(this.scope, ['reset-failed', ...units]).catch(() => {});
    await systemctl(this.scope, [verb === 'start' ? 'start' : 'restart', '--no-block', ...units]);
    // The process each unit ran before: until the queued job replaces it, a look still sees it running.
    const previous = new Map(verb === 'restart' ? agents.map((paths, i) => [paths.agent.id, processMark(raws[i]!)] as const) : []);
    const verified = await this.verify(todo, previous);
    for (const [i, paths] of agents.entries()) results[i] ??= verified.get(paths.agent.id);
    return results as ProcessActionResult[];
  }

  /** Waits for each unit's new process to hold for the grace time; `previous` marks the process a restart replaces. */
  private async verify(agents: AgentPaths[], previous: Map<string, string | undefined>): Promise<Map<string, ProcessActionResult>> {
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
        if (!seen && previous.get(id) !== undefined && processMark(raw) === previous.get(id)) {
          // The restart job has not run yet: the old process is still the one running.
          if (now > deadline) results.set(id, await this.failedStart(paths, raw, `was not restarted within ${Math.round((this.graceMs + START_TIMEOUT_MS) / 1000)} s`));
          else still.push(paths);
        } else if (raw.ActiveState === 'active' && raw.SubState === 'running' && pid > 0) {
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
    await systemctl(this.scope, ['stop', this.unit(paths)]).catch(() => {});
    const settings = await readSettings(paths).catch(() => undefined);
    // The unit's own output is in the journal; with log_target file the runtime's log is in logs/ too.
    const journal = await this.journalTail(paths, 10);
    const logTail = settings?.log_target === 'journal' ? journal : [...(await agentLogTail(paths, 10)), ...journal].slice(-10);
    const hint = Number(raw.ExecMainStatus) === CONFIG_ERROR_EXIT ? ': fix its .env or settings.json (see the log lines below), then start it again' : `: see \`animus logs ${paths.agent.id}\``;
    return { id: paths.agent.id, outcome: 'failed', code: 'EFAILED', message: `${paths.agent.id} did not stay up: it ${reason}${hint}`, logTail, info: { ...toInfo(paths.agent.id, raw), state: 'stopped' } };
  }

  async journalTail(paths: AgentPaths, lines: number): Promise<string[]> {
    const execa = await loadExeca();
    const result = await execa('journalctl', [...(this.scope === 'user' ? ['--user'] : []), '-u', this.unit(paths), '-n', String(lines), '-o', 'cat', '--no-pager'], { reject: false });
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
    const out = await systemctl(this.scope, ['show', `--property=${properties}`, ...agents.map((a) => this.unit(a))]);
    const blocks = out.trim().split(/\n\s*\n/).map((block) => Object.fromEntries(block.split('\n').map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)])));
    const byId = new Map(blocks.map((b) => [b.Id, b]));
    return agents.map((a) => byId.get(this.unit(a)) ?? {});
  }
}

async function systemctl(scope: SystemdScope, args: string[]): Promise<string> {
  const execa = await loadExeca();
  try {
    const result = await execa('systemctl', [...(scope === 'user' ? ['--user'] : []), ...args], { reject: false });
    if (result.exitCode !== 0) {
      const said = result.stderr || result.stdout || `exit ${result.exitCode}`;
      if (scope === 'system' && /Access denied|Interactive authentication required|authentication/i.test(said)) {
        throw new AnimusError('EPM', `systemctl ${args[0]} of the system manager needs root (or a polkit rule): run it again with sudo`);
      }
      throw new AnimusError('EPM', `systemctl ${args[0]} failed: ${describeError(said)}`);
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

/** Which process a unit runs (its main pid and when it started); undefined when none runs. */
function processMark(raw: Record<string, string>): string | undefined {
  const pid = Number(raw.MainPID ?? 0);
  return pid > 0 ? `${pid}@${raw.ExecMainStartTimestampMonotonic ?? ''}` : undefined;
}
