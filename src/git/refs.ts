import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Reading a clone's refs and config straight from its .git files, synchronously and
 * without spawning git: list, health and backup read these for every agent of the home.
 */

/** The commit checked out in a clone; undefined when it cannot tell. */
export function readCloneCommit(clone: string): string | undefined {
  return readHead(join(clone, '.git'));
}

export function readHead(gitDir: string, headText?: string): string | undefined {
  const head = (headText ?? readText(join(gitDir, 'HEAD')))?.trim();
  if (!head) return undefined;
  if (/^[0-9a-f]{40}$/.test(head)) return head;
  const ref = /^ref: (.+)$/.exec(head)?.[1];
  return ref ? resolveRef(gitDir, ref) : undefined;
}

export function readText(path: string): string | undefined {
  return readPlainFile(path)?.toString('utf8');
}

/** Larger than any ref file, config, index or source file of a runtime clone by far. */
const CLONE_FILE_MAX_BYTES = 64 * 1024 * 1024;

/**
 * A file of a clone (its .git files, a tracked file to hash), or undefined when it is missing or not a plain file. The
 * clone is the agent's to change: a HEAD made a link to /dev/zero or a FIFO would hang
 * `list`, `health` and `backup` for the whole home, so the last component is opened
 * without following a link, non-blocking, and must be a regular file of a bounded size.
 */
export function readPlainFile(path: string): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const info = fstatSync(fd);
    if (!info.isFile() || info.size > CLONE_FILE_MAX_BYTES) return undefined;
    return readFileSync(fd);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** The fetch URL of the clone's origin, from .git/config (no git spawned). */
export function readRemoteUrl(clone: string, remote = 'origin'): string | undefined {
  const config = readText(join(clone, '.git', 'config'));
  return config === undefined ? undefined : parseGitConfig(config).get(`remote "${remote}"`)?.get('url');
}

export function symbolicRef(gitDir: string, name: string): string | undefined {
  return /^ref: (.+)$/.exec(readText(join(gitDir, name))?.trim() ?? '')?.[1];
}

export function resolveRef(gitDir: string, ref: string): string | undefined {
  const loose = readText(join(gitDir, ref))?.trim();
  if (loose && /^[0-9a-f]{40}$/.test(loose)) return loose;
  for (const line of readText(join(gitDir, 'packed-refs'))?.split('\n') ?? []) {
    const [sha, name] = line.split(' ');
    if (name === ref && sha && /^[0-9a-f]{40}$/.test(sha)) return sha;
  }
  return undefined;
}

export function parseGitConfig(text: string): Map<string, Map<string, string>> {
  const sections = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      const name = header[1]!.replace(/^(\S+)\s+"/, (_, s: string) => `${s.toLowerCase()} "`);
      current = new Map();
      sections.set(name, current);
      continue;
    }
    const pair = /^([A-Za-z0-9-]+)\s*=\s*(.*)$/.exec(line);
    if (pair && current) current.set(pair[1]!.toLowerCase(), pair[2]!.replace(/^"(.*)"$/, '$1'));
  }
  return sections;
}
