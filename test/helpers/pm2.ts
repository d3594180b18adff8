import { execa } from 'execa';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT } from './cli.js';

/**
 * Kills a PM2 daemon started by a test: `pm2 kill` through the API (stops its apps),
 * then SIGKILL by pid for the daemon and every app pid file left in $PM2_HOME/pids.
 */
export async function killPm2Daemon(pm2Home: string): Promise<void> {
  const pid = await readPid(join(pm2Home, 'pm2.pid'));
  if (pid && alive(pid)) {
    const script = `const API = require('pm2').custom; const api = new API({ pm2_home: process.argv[1] }); api.connect((e) => { if (e) process.exit(0); api.killDaemon(() => { api.disconnect(); process.exit(0); }); });`;
    await execa(process.execPath, ['-e', script, pm2Home], { reject: false, timeout: 30_000, cwd: REPO_ROOT, env: { PM2_HOME: pm2Home, PATH: process.env.PATH } });
  }
  const appPids = await readdir(join(pm2Home, 'pids')).catch(() => [] as string[]);
  for (const file of appPids) {
    const appPid = await readPid(join(pm2Home, 'pids', file));
    if (appPid && alive(appPid)) process.kill(appPid, 'SIGKILL');
  }
  if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
}

async function readPid(path: string): Promise<number | undefined> {
  const pid = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
