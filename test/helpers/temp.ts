import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

const made: string[] = [];

/** A fresh folder under the OS temp dir, removed after the test file's tests. */
export async function tempDir(label = 'animus-test'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `${label}-`));
  made.push(dir);
  return dir;
}

afterAll(async () => {
  await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});
