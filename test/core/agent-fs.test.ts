import { execFileSync } from 'node:child_process';
import { closeSync, lstatSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { agentFileProblem, ensureAgentDir, ensureAgentFile, kindProblem, LstatMemo, openAgentFileSync, pathInside, readAgentFile, readAgentText, statAgentPath, statAgentPaths, writeAgentFileAtomic } from '../../src/core/agent-fs.js';
import { AnimusError } from '../../src/core/errors.js';
import { errorOf } from '../helpers/errors.js';
import { tempDir } from '../helpers/temp.js';

let root: string;
let agent: string;
let other: string;

beforeEach(async () => {
  root = await tempDir('animus-agentfs');
  agent = join(root, 'agent-a');
  other = join(root, 'agent-b');
  mkdirSync(agent, { mode: 0o700 });
  mkdirSync(other, { mode: 0o700 });
  writeFileSync(join(other, '.env'), 'AGENT_API_KEY=sk-let-4f9a1c2e8b7d\n', { mode: 0o600 });
});

describe('reading a file inside an agent folder', () => {
  it('reads a regular file, and says undefined for a missing one', () => {
    writeFileSync(join(agent, '.env'), 'A=1\n');
    expect(readAgentText(agent, '.env')).toBe('A=1\n');
    expect(readAgentText(agent, 'settings.json')).toBeUndefined();
  });

  it('refuses a symlink to another agent\'s .env, naming the file and saying it is a link', () => {
    symlinkSync(join(other, '.env'), join(agent, '.env'));
    const error = errorOf(() => readAgentText(agent, '.env'));
    expect(error.code).toBe('EUNSAFEPATH');
    expect(error.exitCode).toBe(5);
    expect(error.message).toBe(`${join(agent, '.env')} is a symbolic link (to ${join(other, '.env')}): animus never follows links in an agent folder; replace it with the real file`);
  });

  it('refuses a symlink whose target stays inside the folder too (the rule is: no link at all)', () => {
    writeFileSync(join(agent, 'real.json'), '{}');
    symlinkSync('real.json', join(agent, 'settings.json'));
    expect(errorOf(() => readAgentText(agent, 'settings.json')).code).toBe('EUNSAFEPATH');
  });

  it('refuses a file reached through a symlinked folder (logs/ pointing elsewhere)', () => {
    mkdirSync(join(other, 'logs'));
    writeFileSync(join(other, 'logs', 'runtime.err.log'), 'secret line\n');
    symlinkSync(join(other, 'logs'), join(agent, 'logs'));
    const error = errorOf(() => readAgentText(agent, 'logs/runtime.err.log'));
    expect(error.message).toMatch(new RegExp(`^${join(agent, 'logs')} is a symbolic link .*replace it with the real folder$`));
  });

  it('refuses an agent folder that is itself a symlink out of the home', () => {
    const outside = join(root, 'elsewhere');
    mkdirSync(outside);
    writeFileSync(join(outside, '.env'), 'A=1\n');
    const linked = join(root, 'agent-c');
    symlinkSync(outside, linked);
    expect(errorOf(() => readAgentText(linked, '.env')).message).toContain(`${linked} is a symbolic link`);
    expect(agentFileProblem(linked, '.', 'dir')).toContain('is a symbolic link');
  });

  it('refuses a FIFO without blocking', () => {
    execFileSync('mkfifo', [join(agent, '.env')]);
    const error = errorOf(() => readAgentText(agent, '.env'));
    expect(error.message).toBe(`${join(agent, '.env')} is not a regular file: move it away`);
  });

  it('refuses a hard-linked file when asked for a single link (a log that is another agent\'s .env)', () => {
    execFileSync('ln', [join(other, '.env'), join(agent, 'copy.log')]);
    expect(errorOf(() => openAgentFileSync(agent, 'copy.log', { singleLink: true })).message).toContain('has 2 hard links');
  });

  it('refuses a path that climbs out of the folder', () => {
    expect(errorOf(() => pathInside(agent, '../agent-b/.env')).message).toContain('is outside the agent folder');
    expect(errorOf(() => readAgentText(agent, '/etc/passwd')).code).toBe('EUNSAFEPATH');
  });

  it('reports what each path is for list and health', () => {
    writeFileSync(join(agent, 'settings.json'), '{}');
    symlinkSync('/etc/passwd', join(agent, '.env'));
    expect(statAgentPath(agent, 'settings.json').kind).toBe('file');
    expect(statAgentPath(agent, '.env').kind).toBe('symlink');
    expect(statAgentPath(agent, 'animus.db').kind).toBe('missing');
    expect(agentFileProblem(agent, 'settings.json')).toBeUndefined();
    expect(agentFileProblem(agent, '.env')).toContain('(to /etc/passwd)');
  });
});

describe('looking at many names at once (list, health)', () => {
  it('finds what statAgentPath finds for each name, lstat-ing each component once', () => {
    mkdirSync(join(agent, 'logs'));
    writeFileSync(join(agent, 'logs', 'runtime.log'), 'x');
    writeFileSync(join(agent, 'settings.json'), '{}');
    symlinkSync('/etc/passwd', join(agent, '.env'));
    symlinkSync(other, join(agent, 'linked'));
    writeFileSync(join(agent, 'plain'), '');
    const names = ['.', '', 'settings.json', '.env', 'logs', 'logs/runtime.log', 'logs/missing.log', 'missing/below', 'linked/.env', 'plain/below', 'logs/../settings.json'];
    const seen = new LstatMemo();
    const found = statAgentPaths(agent, names, seen);
    expect(found.map((f) => [f.kind, f.via])).toEqual(names.map((name) => [statAgentPath(agent, name).kind, statAgentPath(agent, name).via]));
    expect(found.map((f) => f.kind)).toEqual(['dir', 'dir', 'file', 'symlink', 'dir', 'file', 'missing', 'missing', 'symlink', 'other', 'file']);
    expect(found[8]!.via).toBe(join(agent, 'linked'));
    // Each component once: the folder, its names and logs/'s, whatever the number of names below them.
    expect([...seen.taken.keys()].sort()).toEqual(['', 'settings.json', '.env', 'logs', 'logs/runtime.log', 'logs/missing.log', 'missing', 'linked', 'plain'].sort());
    expect(() => statAgentPaths(other, ['.env'], seen)).toThrow(/one LstatMemo serves one folder/);
    expect(kindProblem(found[3]!)).toContain('(to /etc/passwd)');
    expect(kindProblem(found[2]!)).toBeUndefined();
    expect(errorOf(() => statAgentPaths(agent, ['../agent-b/.env'])).message).toContain('is outside the agent folder');
  });

  it('reads files of every size whole, sized by their stat', () => {
    for (const size of [0, 1, 4095, 65_536, 300_001]) {
      const data = Buffer.alloc(size, size % 251);
      writeFileSync(join(agent, 'blob'), data);
      expect(readAgentFile(agent, 'blob')!.equals(data)).toBe(true);
    }
  });
});

describe('writing inside an agent folder', () => {
  it('replaces a symlinked settings.json with a file instead of writing through it', async () => {
    writeFileSync(join(other, 'settings.json'), 'theirs');
    symlinkSync(join(other, 'settings.json'), join(agent, 'settings.json'));
    await writeAgentFileAtomic(agent, 'settings.json', 'mine');
    expect(readFileSync(join(other, 'settings.json'), 'utf8')).toBe('theirs');
    expect(lstatSync(join(agent, 'settings.json')).isFile()).toBe(true);
  });

  it('never creates, writes or chmods through a logs/ linked outside the home', () => {
    const outside = join(root, 'outside-logs');
    mkdirSync(outside, { mode: 0o755 });
    symlinkSync(outside, join(agent, 'logs'));
    expect(errorOf(() => ensureAgentDir(agent, 'logs')).code).toBe('EUNSAFEPATH');
    expect(errorOf(() => ensureAgentFile(agent, 'logs/runtime.log')).code).toBe('EUNSAFEPATH');
    expect(statSync(outside).mode & 0o777).toBe(0o755);
    expect(() => statSync(join(outside, 'runtime.log'))).toThrow();
  });

  it('refuses to append to a log that is a symlink (O_NOFOLLOW), and creates a missing one 0600', () => {
    ensureAgentDir(agent, 'logs');
    symlinkSync(join(other, '.env'), join(agent, 'logs', 'runtime.err.log'));
    expect(errorOf(() => ensureAgentFile(agent, 'logs/runtime.err.log')).code).toBe('EUNSAFEPATH');
    expect(readFileSync(join(other, '.env'), 'utf8')).toBe('AGENT_API_KEY=sk-let-4f9a1c2e8b7d\n');
    ensureAgentFile(agent, 'logs/runtime.log');
    expect(statSync(join(agent, 'logs', 'runtime.log')).mode & 0o777).toBe(0o600);
    expect(statSync(join(agent, 'logs')).mode & 0o777).toBe(0o700);
  });

  it('opens for append without blocking on a FIFO', () => {
    ensureAgentDir(agent, 'logs');
    execFileSync('mkfifo', [join(agent, 'logs', 'runtime.log')]);
    const error = errorOf(() => {
      const fd = openAgentFileSync(agent, 'logs/runtime.log', { flags: 'a' });
      if (fd !== undefined) closeSync(fd);
    });
    expect(error).toBeInstanceOf(AnimusError);
    expect(error.code).toBe('EUNSAFEPATH');
  });
});
