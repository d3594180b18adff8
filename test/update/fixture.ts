import { execa } from 'execa';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/cli.js';

/** A runtime that stays up until SIGTERM, printing which build it is. */
export function goodRuntime(build: string): Record<string, string> {
  return {
    'package.json': JSON.stringify({ name: 'fixture-runtime', version: '1.0.0', main: 'main.js' }),
    'main.js': `console.log('fixture runtime ${build} up', process.pid);\nsetInterval(() => {}, 1000);\nprocess.on('SIGTERM', () => process.exit(0));\n`,
  };
}

/** A runtime that throws as soon as it starts: what a broken release looks like. */
export const CRASHING_RUNTIME = { 'main.js': "throw new Error('broken release: cannot start');\n" };

/**
 * Ends a PM2 daemon a test started: killDaemon through the API (it stops its apps),
 * then SIGKILL by pid for the daemon and any app whose pid file is left.
 */
export async function killPm2Daemon(pm2Home: string): Promise<void> {
  const pid = await readPid(join(pm2Home, 'pm2.pid'));
  if (pid && alive(pid)) {
    const script = `const API = require('pm2').custom; const api = new API({ pm2_home: process.argv[1] }); api.connect((e) => { if (e) process.exit(0); api.killDaemon(() => { api.disconnect(); process.exit(0); }); });`;
    await execa(process.execPath, ['-e', script, pm2Home], { reject: false, timeout: 30_000, cwd: REPO_ROOT, env: { PM2_HOME: pm2Home, PATH: process.env.PATH } });
  }
  for (const file of await readdir(join(pm2Home, 'pids')).catch(() => [] as string[])) {
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
