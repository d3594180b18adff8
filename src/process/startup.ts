import { loadExeca } from '../core/execa.js';
import { userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { AnimusError, describeError } from '../core/errors.js';
import { findInstalledPackage } from '../core/package-root.js';
import { Pm2Manager } from './pm2.js';
import { systemdRunning } from './systemd.js';

export interface StartupResult {
  pm2Home: string;
  dumpFile: string;
  /** animus agents in the saved list (which, as `pm2 save` does, holds all of this daemon's processes). */
  saved: number;
  platform?: 'systemd';
  /** Root ran PM2's startup itself. */
  installed: boolean;
  /** The one command to run as root, when not root. */
  command?: string;
  note?: string;
}

/**
 * `pm2 save` plus `pm2 startup`: the saved list is what PM2 resurrects at boot, and the
 * init-system hook (a root-owned unit) starts PM2 for this user and PM2_HOME.
 */
export async function setupStartup(options: { home: string; env?: NodeJS.ProcessEnv }): Promise<StartupResult> {
  const env = options.env ?? process.env;
  const pm2 = new Pm2Manager({ env });
  let saved: number;
  try {
    saved = (await pm2.status()).length;
    await pm2.save();
  } finally {
    await pm2.close();
  }
  const base = { pm2Home: pm2.pm2Home, dumpFile: join(pm2.pm2Home, 'dump.pm2'), saved };
  if (!(await systemdRunning())) {
    return { ...base, installed: false, note: 'systemd is not running here (a container?), so PM2 cannot be hooked into boot: start the fleet with `animus start --all` when the machine comes up, or use the container\'s restart policy.' };
  }
  const pm2Root = findInstalledPackage('pm2');
  if (!pm2Root) throw new AnimusError('ENOPM', 'the pm2 package is not installed: reinstall animus (npm install)');
  const pm2Bin = join(pm2Root, 'bin', 'pm2');
  const user = env.SUDO_USER && env.SUDO_USER !== '' ? env.SUDO_USER : userInfo().username;
  const userHome = env.SUDO_USER ? undefined : env.HOME ?? userInfo().homedir;
  const args = ['startup', 'systemd', '-u', user, '--hp', userHome ?? `~${user}`];
  if (process.getuid?.() !== 0) {
    const command = `sudo env PATH=$PATH:${dirname(process.execPath)} PM2_HOME=${pm2.pm2Home} ${process.execPath} ${pm2Bin} ${args.join(' ')}`;
    return { ...base, platform: 'systemd', installed: false, command };
  }
  const execa = await loadExeca();
  const result = await execa(process.execPath, [pm2Bin, ...args], { env: { ...env, PM2_HOME: pm2.pm2Home }, reject: false });
  if (result.exitCode !== 0) {
    throw new AnimusError('EPM', `pm2 startup failed: ${describeError(result.stderr || result.stdout)}: the process list was saved; run \`${pm2Bin} startup\` to see why`);
  }
  return { ...base, platform: 'systemd', installed: true };
}
