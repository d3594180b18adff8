import { describe, expect, it } from 'vitest';
import { fitsInMemory } from '../../src/backup/create-backup.js';

describe('where a backup takes its snapshot', () => {
  const MiB = 1024 * 1024;
  it.each([
    [10 * MiB, 64 * MiB, true],
    [32 * MiB, 64 * MiB, true],
    [33 * MiB, 64 * MiB, false],
    [500 * MiB, 64 * MiB, false],
    [1, undefined, false],
  ])('a %d-byte database with %s bytes free in /dev/shm: in memory %s', (bytes, free, expected) => {
    expect(fitsInMemory(bytes, () => free)).toBe(expected);
  });
});
