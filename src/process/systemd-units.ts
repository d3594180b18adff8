import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { LogTarget } from '../config/settings.js';
import { AnimusError } from '../core/errors.js';
import { packageRoot } from '../core/package-root.js';

export const TEMPLATE_UNIT = 'animus-agent@.service';
export const TARGET_UNIT = 'animus.target';

export type SystemdScope = 'user' | 'system';

export interface UnitContext {
  home: string;
  scope: SystemdScope;
  /** The account the agents run as (system scope only; a user manager runs them as its user). */
  user?: string;
  group?: string;
  /** The node binary in ExecStart (default: the one running animus). */
  node?: string;
  /** Folders outside the home that the runtime must read (node's install, animus's packages). */
  readOnlyPaths?: string[];
}

export interface RenderedUnit {
  name: string;
  content: string;
}

/** Instance name of an agent's unit: the UUID, as in `animus-agent@<uuid>.service`. */
export function instanceUnit(uuid: string): string {
  return `animus-agent@${uuid}.service`;
}

/**
 * The template unit and the target, with the placeholders of `systemd/` filled for a
 * home and a user. `install` and `render` both write exactly this.
 */
export async function renderUnits(context: UnitContext): Promise<RenderedUnit[]> {
  const home = checkUnitPath(resolve(context.home), 'the home');
  const node = checkUnitPath(context.node ?? process.execPath, 'the node binary');
  const scope = context.scope;
  let userLines = '';
  if (scope === 'system') {
    const user = context.user ?? defaultUser();
    checkAccountName(user);
    const group = context.group ?? user;
    checkAccountName(group);
    userLines = `User=${user}\nGroup=${group}\n`;
  }
  const readOnly = (context.readOnlyPaths ?? defaultReadOnlyPaths(node, home)).map((p) => checkUnitPath(p, 'a read-only path'));
  const values: Record<string, string> = {
    HOME: escapeSpecifiers(home),
    NODE: escapeSpecifiers(node),
    USER_LINES: userLines,
    BIND_LINES: readOnly.map((p) => `BindReadOnlyPaths=-${escapeSpecifiers(p)}\n`).join(''),
    SCOPE_FLAG: scope === 'user' ? '--user ' : '',
    WANTED_BY: scope === 'user' ? 'default.target' : 'multi-user.target',
  };
  const units: RenderedUnit[] = [];
  for (const name of [TEMPLATE_UNIT, TARGET_UNIT]) {
    const template = await readFile(join(packageRoot(), 'systemd', name), 'utf8');
    units.push({ name, content: fill(template, values) });
  }
  return units;
}

/** Per-agent settings that a template cannot carry: the memory ceiling and where stdout goes. */
export function renderDropIn(settings: { memory_limit_mb: number; log_target: LogTarget }): string {
  const lines = ['# Written by animus from the agent\'s settings.json; `animus start` rewrites it.', '[Service]', `MemoryMax=${settings.memory_limit_mb}M`];
  if (settings.log_target === 'journal') lines.push('StandardOutput=journal', 'StandardError=journal');
  return `${lines.join('\n')}\n`;
}

export function dropInPath(unitDir: string, uuid: string): string {
  return join(unitDir, `${instanceUnit(uuid)}.d`, 'animus.conf');
}

export function unitDirectory(scope: SystemdScope, env: NodeJS.ProcessEnv): string {
  if (scope === 'system') return '/etc/systemd/system';
  const config = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME !== '' ? env.XDG_CONFIG_HOME : join(env.HOME ?? homedir(), '.config');
  return join(config, 'systemd', 'user');
}

function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{([A-Z_]+)\}\}/g, (match, key: string) => {
    const value = values[key];
    if (value === undefined) throw new AnimusError('EIO', `systemd template has an unknown placeholder ${match}: reinstall animus`);
    return value;
  });
}

/** The invoking user, also under sudo (the unit should not run agents as root). */
function defaultUser(): string {
  return process.env.SUDO_USER && process.env.SUDO_USER !== '' ? process.env.SUDO_USER : userInfo().username;
}

/**
 * The sandbox hides /home, /root and the animus home: node's own install and the
 * packages the shared node_modules links to must be bound back in when they live there.
 */
function defaultReadOnlyPaths(node: string, home: string): string[] {
  const hidden = ['/home/', '/root/', '/run/user/', `${home}/`];
  const candidates = [dirname(dirname(node)), packageRoot()];
  return [...new Set(candidates.filter((p) => hidden.some((h) => `${p}/`.startsWith(h))))];
}

function checkUnitPath(path: string, what: string): string {
  if (!path.startsWith('/') || /[\s"'\\;]/.test(path)) {
    throw new AnimusError('EUSAGE', `${what} ${JSON.stringify(path)} cannot be written into a systemd unit (it must be absolute, without spaces, quotes or backslashes): move it`);
  }
  return path;
}

function checkAccountName(name: string): void {
  if (!/^[a-z_][a-z0-9_.-]*\$?$/i.test(name)) throw new AnimusError('EUSAGE', `"${name}" is not a valid user or group name for --run-as`);
}

function escapeSpecifiers(text: string): string {
  return text.replace(/%/g, '%%');
}

/**
 * Which systemd manager runs this user's agents: where `animus systemd install` put the
 * template (the user's own first), else the system's when root, else the user's.
 */
export function detectScope(env: NodeJS.ProcessEnv): SystemdScope {
  if (env.ANIMUS_SYSTEMD_SCOPE === 'user' || env.ANIMUS_SYSTEMD_SCOPE === 'system') return env.ANIMUS_SYSTEMD_SCOPE;
  if (existsSync(join(unitDirectory('user', env), TEMPLATE_UNIT))) return 'user';
  if (existsSync(join(unitDirectory('system', env), TEMPLATE_UNIT))) return 'system';
  return process.getuid?.() === 0 ? 'system' : 'user';
}
