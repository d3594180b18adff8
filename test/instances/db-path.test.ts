import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { agentIdFromUuid } from '../../src/core/agent-id.js';
import { agentPathsIn } from '../../src/home/layout.js';
import { agentDbLocation, agentDbProblem, resolveDbLocation } from '../../src/instances/db-path.js';
import { errorOf } from '../helpers/errors.js';
import { tempDir } from '../helpers/temp.js';

const AGENT = agentIdFromUuid('6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b');
let dir: string;

beforeEach(async () => {
  dir = join(await tempDir('animus-dbpath'), AGENT.id);
  mkdirSync(dir);
});

describe('the database path of an agent', () => {
  it.each([
    [undefined, 'animus.db', 'default'],
    ['', 'animus.db', 'default'],
    ['animus.db', 'animus.db', 'env'],
    ['data/queue.db', 'data/queue.db', 'env'],
    ['./logs/../animus.db', 'animus.db', 'env'],
  ])('DB_PATH=%s resolves to %s', (setting, rel, source) => {
    expect(resolveDbLocation(dir, setting)).toEqual({ path: join(dir, rel), rel, source });
  });

  it('honours an absolute DB_PATH to the folder\'s own database', () => {
    expect(resolveDbLocation(dir, join(dir, 'sanctum.db')).rel).toBe('sanctum.db');
  });

  it.each(['../agent-other/animus.db', '/srv/shared.db', '.', '..'])('refuses DB_PATH=%s with one line (exit 5)', (setting) => {
    const error = errorOf(() => resolveDbLocation(dir, setting));
    expect(error.code).toBe('EBADENV');
    expect(error.exitCode).toBe(5);
    expect(error.message).toMatch(/^DB_PATH=.* is outside the agent folder: remove it \(the database is animus\.db\) or point it at a file inside /);
  });

  it("keeps Broca's sanctum.db fallback in a folder that has only that", () => {
    writeFileSync(join(dir, 'sanctum.db'), '');
    expect(resolveDbLocation(dir, undefined).rel).toBe('sanctum.db');
    writeFileSync(join(dir, 'animus.db'), '');
    expect(resolveDbLocation(dir, undefined).rel).toBe('animus.db');
  });

  it('reads DB_PATH from the .env and refuses a symlinked database or -wal', () => {
    const paths = agentPathsIn(dir, AGENT);
    writeFileSync(join(dir, '.env'), 'DB_PATH=data.db\n');
    expect(agentDbLocation(paths).rel).toBe('data.db');
    writeFileSync(join(dir, '.env'), '');
    writeFileSync(join(dir, 'animus.db'), '');
    expect(agentDbProblem(paths)).toBeUndefined();
    const elsewhere = join(dir, '..', 'elsewhere-wal');
    writeFileSync(elsewhere, '');
    symlinkSync(elsewhere, join(dir, 'animus.db-wal'));
    expect(agentDbProblem(paths)).toContain(`${join(dir, 'animus.db-wal')} is a symbolic link`);
  });

  it('refuses a .env that is a symlink rather than reading DB_PATH through it', () => {
    const paths = agentPathsIn(dir, AGENT);
    const other = join(dir, '..', 'other.env');
    writeFileSync(other, 'DB_PATH=x.db\n');
    symlinkSync(other, join(dir, '.env'));
    expect(errorOf(() => agentDbLocation(paths)).code).toBe('EUNSAFEPATH');
  });

  it('leaves the default when the .env cannot be parsed (the runtime reports that itself)', () => {
    writeFileSync(join(dir, '.env'), 'not an assignment\n');
    expect(agentDbLocation(agentPathsIn(dir, AGENT)).rel).toBe('animus.db');
  });
});
