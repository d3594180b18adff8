import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { hasZeroPage, readImage } from '../../src/backup/create-backup.js';
import { tempDir } from '../helpers/temp.js';

let dir: string;
let db: string;
let scratch: string;

beforeAll(async () => {
  dir = await tempDir('read-image');
  db = join(dir, 'animus.db');
  scratch = join(dir, 'scratch');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(scratch);
  const handle = new Database(db);
  handle.pragma('journal_mode = WAL');
  handle.exec('CREATE TABLE messages (id INTEGER PRIMARY KEY, body TEXT)');
  const insert = handle.prepare('INSERT INTO messages (body) VALUES (?)');
  for (let i = 0; i < 200; i++) insert.run(`message ${i} ${'x'.repeat(300)}`);
  handle.close();
});

function rows(image: Buffer): number {
  const copy = Buffer.from(image);
  copy[18] = copy[19] = 1;
  const memory = new Database(copy);
  try {
    expect(memory.pragma('quick_check', { simple: true })).toBe('ok');
    return memory.prepare('SELECT COUNT(*) FROM messages').pluck().get() as number;
  } finally {
    memory.close();
  }
}

const serialize = (path: string) => {
  const handle = new Database(path, { readonly: true });
  try {
    return handle.serialize();
  } finally {
    handle.close();
  }
};

describe('reading a database image for a backup', () => {
  it('tells an image with a page of zeros', () => {
    const image = serialize(db);
    expect(hasZeroPage(image)).toBe(false);
    const pageSize = image.readUInt16BE(16);
    const holed = Buffer.from(image);
    holed.fill(0, 2 * pageSize, 3 * pageSize);
    expect(hasZeroPage(holed)).toBe(true);
    expect(hasZeroPage(Buffer.alloc(50))).toBe(false);
    expect(hasZeroPage(Buffer.from('not a database at all, but longer than a header would be'.repeat(4)))).toBe(false);
  });

  it('keeps the serialized image when every page was read', async () => {
    let served: Buffer | undefined;
    const image = await readImage(db, scratch, (path) => (served = serialize(path)));
    expect(image).toBe(served);
    expect(rows(image)).toBe(200);
    expect(await readdir(scratch)).toEqual([]);
  });

  it("takes the image again through SQLite's backup API when a page came back as zeros", async () => {
    // What serialize returns when the disk fails to give it a page: that page as zeros, no error.
    const failing = (path: string) => {
      const image = serialize(path);
      image.fill(0, 2 * image.readUInt16BE(16), 3 * image.readUInt16BE(16));
      return image;
    };
    const image = await readImage(db, scratch, failing);
    expect(hasZeroPage(image)).toBe(false);
    expect(rows(image)).toBe(200);
    expect(await readdir(scratch)).toEqual([]);
  });
});
