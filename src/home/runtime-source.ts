import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AnimusError } from '../core/errors.js';
import { pathExists } from '../core/fs.js';
import { packageManifest, packageRoot } from '../core/package-root.js';
import { ANIMUS_GIT_IDENTITY, gitError } from '../git/repo.js';
import { runGit } from '../git/run.js';
import { RUNTIME_DEPENDENCIES } from './shared-runtime.js';

/**
 * The default runtime repository: a bare git repo inside the home holding this
 * animus's runtime build, one commit per distinct build on `main` and a tag per
 * version. Agents clone it like any other runtime repo (so update and rollback work
 * the same for it and for a remote one), and it needs no network.
 */
export const RUNTIME_BRANCH = 'main';

export interface RuntimeBuild {
  files: Record<string, string>;
  /** sha256 of the files: decides whether a new commit is needed. */
  hash: string;
  version: string;
}

export async function readRuntimeBuild(): Promise<RuntimeBuild> {
  const root = packageRoot();
  const mainFile = join(root, 'dist', 'runtime', 'main.js');
  let main: string;
  try {
    main = await readFile(mainFile, 'utf8');
  } catch {
    throw new AnimusError('EIO', `the runtime build ${mainFile} is missing: run \`npm run build\` in ${root}`);
  }
  const manifest = packageManifest();
  const dependencies = Object.fromEntries(RUNTIME_DEPENDENCIES.map((name) => [name, manifest.dependencies[name] ?? '*']));
  const pkg = {
    name: 'animus-runtime',
    version: manifest.version,
    private: true,
    description: 'animus agent runtime: a Broca-compatible message broker between chat platforms and one Letta agent',
    type: 'module',
    main: 'main.js',
    engines: { node: '>=20' },
    dependencies,
  };
  const files = { 'main.js': main, 'package.json': `${JSON.stringify(pkg, null, 2)}\n` };
  const hash = createHash('sha256').update(JSON.stringify(files)).digest('hex');
  return { files, hash, version: manifest.version };
}

export interface PublishResult {
  commit: string;
  created: boolean;
  /** `main` holds a commit animus did not make (pushed by someone): left as it is, the build not published over it. */
  foreign?: { commit: string; author: string; subject: string };
}

/** Creates the bare repo if needed and commits the build unless `main` already holds it. */
export async function publishRuntime(repoPath: string, build: RuntimeBuild, scratchDir: string): Promise<PublishResult> {
  let createdRepo = false;
  if (!(await pathExists(join(repoPath, 'HEAD')))) {
    const temp = await mkdtemp(join(scratchDir, `runtime-git.${process.pid}.`));
    try {
      await runGit(['init', '--quiet', '--bare', `--initial-branch=${RUNTIME_BRANCH}`], { cwd: temp });
      await rm(repoPath, { recursive: true, force: true });
      await rename(temp, repoPath);
    } catch (error) {
      await rm(temp, { recursive: true, force: true });
      throw gitError(`cannot create the runtime repository ${repoPath}`, error, 'check that the home is writable');
    }
    createdRepo = true;
  }

  const work = await mkdtemp(join(scratchDir, `runtime-tree.${process.pid}.`));
  try {
    for (const [name, content] of Object.entries(build.files)) await writeFile(join(work, name), content);
    const env = { ...ANIMUS_GIT_IDENTITY, GIT_INDEX_FILE: join(work, '.index') };
    const bare = (args: string[]) => runGit(args, { cwd: repoPath, env });
    await bare(['--work-tree', work, 'add', '--all', '--', ...Object.keys(build.files)]);
    const tree = (await bare(['write-tree'])).trim();
    const parent = createdRepo ? undefined : (await bare(['rev-parse', '--verify', '--quiet', `${RUNTIME_BRANCH}^{commit}`]).catch(() => '')).trim() || undefined;
    if (parent && (await bare(['rev-parse', `${parent}^{tree}`])).trim() === tree) {
      return { commit: parent, created: false };
    }
    if (parent) {
      // Someone pushed their own runtime to the home's repository: publishing on top would
      // replace their code for every agent's next update, silently. Leave it and say so.
      const [email, author, subject] = (await bare(['log', '-1', '--format=%ae%x00%an <%ae>%x00%s', parent])).split('\0');
      if (email !== ANIMUS_GIT_IDENTITY.GIT_AUTHOR_EMAIL) return { commit: parent, created: false, foreign: { commit: parent, author: author ?? '', subject: subject ?? '' } };
    }
    const message = `animus runtime ${build.version} (${build.hash.slice(0, 12)})`;
    const commit = (await bare(['commit-tree', tree, ...(parent ? ['-p', parent] : []), '-m', message])).trim();
    await bare(['update-ref', `refs/heads/${RUNTIME_BRANCH}`, commit]);
    await bare(['tag', '--force', `v${build.version}`, commit]);
    // One pack instead of loose objects: every clone hardlinks two files, not a folder per object.
    await bare(['repack', '-a', '-d', '-q', '--no-write-bitmap-index']);
    return { commit, created: true };
  } catch (error) {
    throw gitError(`cannot publish the runtime into ${repoPath}`, error, 'run `animus init` again; if it persists, delete that folder and re-run');
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
