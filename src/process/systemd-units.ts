import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { AnimusError } from '../core/errors.js';
import { packageRoot } from '../core/package-root.js';
import { runtimeNodeFlags } from './node-flags.js';
import { checkAccountName, refuseRoot } from './systemd-account.js';

/** The files in `systemd/` that every home's units are rendered from. */
const TEMPLATE_SOURCE = 'animus-agent@.service';
const TARGET_SOURCE = 'animus.target';

export type SystemdScope = 'user' | 'system';

/**
 * The names of one home's units. Each home has its own template and target, named from a
 * hash of its path, so installing for one home never replaces the units of another.
 */
export interface UnitNames {
  /** `animus-<8 hex digits of sha256(home)>`. */
  prefix: string;
  /** `<prefix>@.service` */
  template: string;
  /** `<prefix>.target` */
  target: string;
}

export function unitNames(home: string): UnitNames {
  const prefix = `animus-${createHash('sha256').update(resolve(home)).digest('hex').slice(0, 8)}`;
  return { prefix, template: `${prefix}@.service`, target: `${prefix}.target` };
}

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

/** An agent's unit in its home: the template instantiated with the UUID, `<prefix>@<uuid>.service`. */
export function instanceUnit(home: string, uuid: string): string {
  return `${unitNames(home).prefix}@${uuid}.service`;
}

/**
 * The template unit and the target, with the placeholders of `systemd/` filled for a
 * home and a user. `install` and `render` both write exactly this.
 */
export async function renderUnits(context: UnitContext): Promise<RenderedUnit[]> {
  const home = checkUnitPath(resolve(context.home), 'the home');
  const node = checkUnitPath(context.node ?? process.execPath, 'the node binary');
  const scope = context.scope;
  const names = unitNames(home);
  let userLines = '';
  if (scope === 'system') {
    const user = context.user ?? defaultUser();
    checkAccountName(user);
    if (user === 'root') refuseRoot(user);
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
    PREFIX: names.prefix,
    TARGET: names.target,
  };
  const units: RenderedUnit[] = [];
  for (const [source, name] of [
    [TEMPLATE_SOURCE, names.template],
    [TARGET_SOURCE, names.target],
  ] as const) {
    const template = await readFile(join(packageRoot(), 'systemd', source), 'utf8');
    units.push({ name, content: fill(template, values) });
  }
  return units;
}

/**
 * Per-agent settings that a template cannot carry: the memory ceiling. Logs are not
 * among them: the unit always writes to the journal (the runtime writes its own files).
 */
export function renderDropIn(settings: { memory_limit_mb: number }): string {
  // The V8 limits PM2 passes as node_args; NODE_OPTIONS takes only the heap sizes (it refuses
  // --optimize-for-size and --single-threaded-gc), and needs no change to the template's ExecStart.
  const heap = runtimeNodeFlags(settings.memory_limit_mb).filter((flag) => /^--max-(old|semi)-space-size=/.test(flag));
  return [
    '# Written by animus from the agent\'s settings.json; `animus start` rewrites it.',
    '[Service]',
    `MemoryMax=${settings.memory_limit_mb}M`,
    `Environment="NODE_OPTIONS=${heap.join(' ')}"`,
    '',
  ].join('\n');
}

export function dropInPath(unitDir: string, home: string, uuid: string): string {
  return join(unitDir, `${instanceUnit(home, uuid)}.d`, 'animus.conf');
}

/** The `User=` of a home's installed system template: the account its agents run as. */
export async function installedAccountName(unitDir: string, home: string): Promise<string | undefined> {
  const text = await readFile(join(unitDir, unitNames(home).template), 'utf8').catch(() => '');
  return /^User=(.+)$/m.exec(text)?.[1]?.trim();
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

function escapeSpecifiers(text: string): string {
  return text.replace(/%/g, '%%');
}

/**
 * Which systemd manager runs a home's agents: where `animus systemd install` put the
 * home's template (the user's own first), else the system's when root, else the user's.
 */
export function detectScope(env: NodeJS.ProcessEnv, home: string): SystemdScope {
  if (env.ANIMUS_SYSTEMD_SCOPE === 'user' || env.ANIMUS_SYSTEMD_SCOPE === 'system') return env.ANIMUS_SYSTEMD_SCOPE;
  const { template } = unitNames(home);
  if (existsSync(join(unitDirectory('user', env), template))) return 'user';
  if (existsSync(join(unitDirectory('system', env), template))) return 'system';
  return process.getuid?.() === 0 ? 'system' : 'user';
}
