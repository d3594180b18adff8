import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { AnimusError } from '../core/errors.js';
import { removeBackupDebris } from '../backup/debris.js';
import { isAlive } from '../core/pid.js';
import { DIR_MODE, ensureDir, ensureHomeDir, pathExists, writeFileAtomic } from '../core/fs.js';
import { homeLayout, type HomeLayout } from './layout.js';
import { publishRuntime, readRuntimeBuild } from './runtime-source.js';
import { ensureSharedRuntime, type LinkRepair } from './shared-runtime.js';

/** What `.animus/home.json` records, so that a deploy can skip init when nothing changed. */
interface HomeMarker {
  format: 1;
  animusVersion: string;
  runtimeHash: string;
  runtimeCommit: string;
}

export interface InitResult {
  home: string;
  created: boolean;
  runtimeRepo: string;
  runtimeCommit: string;
  runtimeVersion: string;
  sharedModules: string;
  /** What this run changed; empty when the home was already complete. */
  changes: string[];
  links: LinkRepair[];
}

/**
 * Creates the home, or repairs what is missing from it: its folders, the shared
 * runtime links and the runtime source repo. Idempotent: a second run on a complete
 * home changes nothing. Agent folders are never touched.
 */
export async function initHome(root: string): Promise<InitResult> {
  try {
    return await prepareHome(root);
  } catch (error) {
    throw homeError(homeLayout(root).root, error);
  }
}

/** A file-system refusal (a file in the way, no permission, a full disk) as one line that names the home. */
function homeError(root: string, error: unknown): unknown {
  const errno = error as NodeJS.ErrnoException;
  if (error instanceof AnimusError || typeof errno?.code !== 'string' || !errno.code.startsWith('E')) return error;
  const where = errno.path && errno.path !== root ? ` (${errno.path})` : '';
  return new AnimusError('EIO', `cannot prepare the home ${root}${where}: ${errno.code}: choose another --home or fix its permissions`, { cause: error });
}

async function prepareHome(root: string): Promise<InitResult> {
  const layout = homeLayout(root);
  const changes: string[] = [];
  const created = !(await pathExists(layout.root));
  await assertUsableHome(layout, created);
  // The home and .animus/ keep the group's read that `systemd install --run-as` granted (0750);
  // anything looser becomes 0700. Staging (deploys being assembled) is always 0700.
  if ((await ensureHomeDir(layout.root)) !== undefined && !created) changes.push(`set ${layout.root} to mode 0700`);
  for (const dir of [layout.stateDir, layout.stagingDir]) {
    if (!(await pathExists(dir))) changes.push(`created ${dir}`);
    if (dir === layout.stagingDir) await ensureDir(dir, DIR_MODE);
    else await ensureHomeDir(dir);
  }
  changes.push(...(await removeAbandonedStaging(layout)));
  changes.push(...removeBackupDebris(layout.backupsDir).map((file) => `removed unfinished archive ${file}`));

  const links = await ensureSharedRuntime(layout.sharedModules);
  for (const link of links) if (link.action !== 'ok') changes.push(`${link.action} shared runtime link ${link.name}`);

  const build = await readRuntimeBuild();
  const published = await publishRuntime(layout.runtimeRepo, build, layout.stagingDir);
  if (published.created) changes.push(`published runtime ${build.version} as ${published.commit.slice(0, 12)}`);
  if (published.foreign) {
    changes.push(
      `left ${layout.runtimeRepo} at ${published.foreign.commit.slice(0, 12)} ("${published.foreign.subject}" by ${published.foreign.author}), a commit animus did not make: runtime ${build.version} was not published over it; agents that follow main get that commit`,
    );
  }

  const marker: HomeMarker = { format: 1, animusVersion: build.version, runtimeHash: build.hash, runtimeCommit: published.commit };
  await writeFileAtomic(markerPath(layout), `${JSON.stringify(marker, null, 2)}\n`);
  return {
    home: layout.root,
    created,
    runtimeRepo: layout.runtimeRepo,
    runtimeCommit: published.commit,
    runtimeVersion: build.version,
    sharedModules: layout.sharedModules,
    changes,
    links,
  };
}

/**
 * What deploy calls: a full init only when the home is new or this animus carries a
 * different runtime build than the one published; otherwise a few stat calls.
 */
export function ensureHome(root: string): Promise<HomeLayout> {
  // One check per home per process: deploying many agents at once must not race init.
  const key = homeLayout(root).root;
  let pending = ensuring.get(key);
  if (!pending) {
    pending = checkHome(key).catch((error) => {
      ensuring.delete(key);
      throw error;
    });
    ensuring.set(key, pending);
  }
  return pending;
}

const ensuring = new Map<string, Promise<HomeLayout>>();

async function checkHome(root: string): Promise<HomeLayout> {
  const layout = homeLayout(root);
  try {
    const marker = JSON.parse(await readFile(markerPath(layout), 'utf8')) as HomeMarker;
    const build = await readRuntimeBuild();
    const complete = marker.runtimeHash === build.hash && (await pathExists(join(layout.runtimeRepo, 'HEAD'))) && (await pathExists(layout.sharedModules));
    if (complete) return layout;
  } catch {
    // No marker or unreadable: fall through to a full init.
  }
  await initHome(root);
  return layout;
}

function markerPath(layout: HomeLayout): string {
  return join(layout.stateDir, 'home.json');
}

async function assertUsableHome(layout: HomeLayout, created: boolean): Promise<void> {
  if (created) return;
  const info = await stat(layout.root);
  if (!info.isDirectory()) throw new AnimusError('EUSAGE', `${layout.root} exists and is not a folder: choose another --home`);
}

/** Staging folders are named `<label>.<pid>.<random>`; those of dead processes are debris of a killed deploy or init. */
export async function removeAbandonedStaging(layout: HomeLayout): Promise<string[]> {
  const removed: string[] = [];
  let entries: string[];
  try {
    entries = await readdir(layout.stagingDir);
  } catch {
    return removed;
  }
  for (const name of entries) {
    const pid = Number(name.split('.')[1]);
    if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) continue;
    await rm(join(layout.stagingDir, name), { recursive: true, force: true });
    removed.push(`removed abandoned staging ${name}`);
  }
  return removed;
}

