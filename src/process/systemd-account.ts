import { lchown, lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { AnimusError, describeError } from '../core/errors.js';
import { loadExeca } from '../core/execa.js';

/** The account a system unit runs agents as. */
export interface Account {
  name: string;
  uid: number;
  gid: number;
  group: string;
}

const NAME = /^[a-z_][a-z0-9_.-]*\$?$/i;

export function checkAccountName(name: string): void {
  if (!NAME.test(name)) throw new AnimusError('EUSAGE', `"${name}" is not a valid user or group name for --run-as`);
}

/** One line for every way of asking for root: agents never run as root. */
export function refuseRoot(name: string): never {
  throw new AnimusError(
    'EUSAGE',
    `agents never run as root (${name}): pass --run-as <account> with an unprivileged account, and --create-user to have animus create it as a system account`,
  );
}

/** The account by name through NSS (so LDAP accounts count too); undefined when there is none. */
export async function lookupAccount(name: string): Promise<Account | undefined> {
  checkAccountName(name);
  const execa = await loadExeca();
  const passwd = await execa('getent', ['passwd', name], { reject: false });
  if (passwd.exitCode !== 0) return undefined;
  const [, , uid, gid] = passwd.stdout.trim().split(':');
  const group = await execa('getent', ['group', gid!], { reject: false });
  return { name, uid: Number(uid), gid: Number(gid), group: group.exitCode === 0 ? group.stdout.split(':')[0]! : String(gid) };
}

/** `--create-user`: a system account with its own group, no home and no login shell. */
export async function createSystemAccount(name: string): Promise<Account> {
  checkAccountName(name);
  const execa = await loadExeca();
  const made = await execa('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', name], { reject: false });
  if (made.exitCode !== 0) throw new AnimusError('EIO', `cannot create the account ${name} (${describeError(made.stderr || `exit ${made.exitCode}`)}): create it yourself and pass --run-as ${name}`);
  const account = await lookupAccount(name);
  if (!account) throw new AnimusError('EIO', `useradd made ${name} but it cannot be looked up: check /etc/nsswitch.conf`);
  return account;
}

/**
 * Gives an agent's folder to the account its unit runs as, so that what the runtime
 * writes (logs, database, lock) is the account's own and `animus logs` as the account can
 * read it. Symlinks are changed themselves (lchown) and never followed out of the folder.
 */
export async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  const info = await lstat(dir);
  if (info.isSymbolicLink()) return;
  if (info.uid !== uid || info.gid !== gid) await lchown(dir, uid, gid);
  if (!info.isDirectory()) return;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await chownTree(path, uid, gid);
    else await lchown(path, uid, gid);
  }
}
