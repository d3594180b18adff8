import { chmod, chown, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { json, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

/**
 * The CLI's V8 code cache (src/launch/code-cache.ts), seen from outside: the built CLI
 * run twice, with the cache folder the test's own ($XDG_CACHE_HOME/animus/code). A cache
 * is code the CLI runs, so one that is damaged, or that someone else could have
 * written, must never be used; and a command must work the same with or without it.
 */
let home: string;
let cacheDir: string;

beforeEach(async () => {
  home = join(await tempDir('animus-code-cache'), 'home');
  cacheDir = join(`${home}.cache`, 'animus', 'code');
  expect((await runCli(['init', '--json'], { home })).code).toBe(0);
});

async function cacheFiles(command: string): Promise<string[]> {
  const names = await readdir(cacheDir).catch(() => [] as string[]);
  return names.filter((name) => name.startsWith(`${command}-`) && name.endsWith('.v8')).map((name) => join(cacheDir, name));
}

async function onlyCache(command: string): Promise<string> {
  const files = await cacheFiles(command);
  expect(files).toHaveLength(1);
  return files[0]!;
}

const list = () => runCli(['list', '--json'], { home });

describe('the code cache', () => {
  it('the first run of a command writes its cache, private to the user; the next run uses it and leaves it as it was', async () => {
    const first = await list();
    expect(first.code, first.stderr).toBe(0);
    const file = await onlyCache('list');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(cacheDir)).mode & 0o777).toBe(0o700);
    const made = await stat(file);

    const second = await list();
    expect(second.code, second.stderr).toBe(0);
    expect(json(second)).toEqual(json(first));
    // Used, not made again: a rejected cache would have been replaced (a new file renamed over it).
    const after = await stat(file);
    expect([after.ino, after.mtimeMs]).toEqual([made.ino, made.mtimeMs]);
    // Another command has a cache of its own.
    expect((await runCli(['--version'], { home })).code).toBe(0);
    expect(await cacheFiles('version')).toHaveLength(1);
  });

  it('a damaged cache is never run: the command works, and the cache is made again', async () => {
    await list();
    const file = await onlyCache('list');
    const data = await readFile(file);
    // One byte of the digest changed: V8 would take the data as it is, the digest no longer holds.
    data[5] = data[5]! ^ 0xff;
    await writeFile(file, data, { mode: 0o600 });
    const damaged = await stat(file);
    const result = await list();
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toBe('');
    const again = await readFile(await onlyCache('list'));
    expect((await stat(file)).ino).not.toBe(damaged.ino);
    expect(createHash('sha256').update(again.subarray(32)).digest().equals(again.subarray(0, 32))).toBe(true);
  });

  it('a cache file of another user, or one others may write, is refused and replaced by one of this user', async () => {
    await list();
    const file = await onlyCache('list');
    await chown(file, 65534, 65534);
    await list();
    expect((await stat(file)).uid).toBe(process.getuid!());
    await chmod(file, 0o666);
    await list();
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it('in a cache folder others may write, nothing is read or written', async () => {
    await list();
    const file = await onlyCache('list');
    await chmod(cacheDir, 0o777);
    await writeFile(file, 'not a cache');
    const before = await stat(file);
    const names = await readdir(cacheDir);
    const result = await list();
    expect(result.code, result.stderr).toBe(0);
    const after = await stat(file);
    expect([after.ino, after.size]).toEqual([before.ino, before.size]);
    expect(await readdir(cacheDir)).toEqual(names);
  });

  it('ANIMUS_CODE_CACHE=off writes none; a usage error writes none', async () => {
    const off = await runCli(['list', '--json'], { home, env: { ANIMUS_CODE_CACHE: 'off' } });
    expect(off.code, off.stderr).toBe(0);
    expect(await cacheFiles('list')).toEqual([]);
    expect((await runCli(['list', '--no-such-flag'], { home })).code).toBe(2);
    expect(await cacheFiles('list')).toEqual([]);
  });
});
