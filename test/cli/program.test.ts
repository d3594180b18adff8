import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { BIN, cliEnv, json, REPO_ROOT, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';
import { buildProgram, REGISTRARS } from '../../src/cli/program.js';

describe('animus (program)', () => {
  it('prints its version', async () => {
    const home = await tempDir('program');
    const { version } = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8'));
    const result = await runCli(['--version'], { home });
    expect(result).toMatchObject({ code: 0, stdout: version });
  });

  it('gives every command a description and an example in its --help', async () => {
    const home = await tempDir('program');
    const help = await runCli(['--help'], { home });
    expect(help.code).toBe(0);
    const commands = [...help.stdout.matchAll(/^ {2}([a-z][a-z-]*)(?:\|[a-z]+)? /gm)].map((m) => m[1]!).filter((c) => c !== 'help');
    expect(commands).toEqual(expect.arrayContaining(['init', 'deploy', 'list', 'remove', 'adopt', 'config']));
    const leaves: string[][] = [];
    for (const command of commands) {
      const sub = await runCli([command, '--help'], { home });
      expect(sub.code, command).toBe(0);
      // A group lists its subcommands (each checked below); a leaf shows examples.
      const children = /^Commands:/m.test(sub.stdout)
        ? [...sub.stdout.split(/^Commands:/m)[1]!.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]!).filter((c) => c !== 'help')
        : [];
      if (children.length === 0) leaves.push([command]);
      for (const child of children) leaves.push([command, child]);
    }
    for (const path of leaves) {
      const help = await runCli([...path, '--help'], { home });
      expect(help.code, path.join(' ')).toBe(0);
      expect(help.stdout, path.join(' ')).toMatch(/Examples:\n {2}\$ (\S+=\S+ )?animus /);
    }
  });

  it('registers the command named alone, with the help it has among all; help and unknown names register all', () => {
    const build = (argv: string[]) => buildProgram({ signal: new AbortController().signal, env: {}, exit: { code: 0 }, argv });
    const names = (program: Command) => program.commands.flatMap((command) => [command.name(), ...command.aliases()]);
    // Every command's help, and its subcommands', by path.
    const helps = (command: Command, path = ''): Array<[string, string]> => [[path, command.helpInformation()], ...command.commands.flatMap((sub) => helps(sub, `${path} ${sub.name()}`))];
    const all = build(['--help']);
    expect(names(all)).toEqual(REGISTRARS.flatMap((registrar) => registrar.names));
    const allHelps = new Map(helps(all));
    for (const registrar of REGISTRARS) {
      for (const name of registrar.names) {
        const alone = build(['--home', '/srv/animus', '--json', name, '--help']);
        expect(names(alone), name).toEqual(registrar.names);
        for (const [path, help] of helps(alone).slice(1)) expect(help, path).toBe(allHelps.get(path));
      }
    }
    for (const argv of [[], ['--help'], ['-h', 'health'], ['help', 'health'], ['helth'], ['--home', 'health'], ['--', 'health']]) expect(names(build(argv)), argv.join(' ')).toEqual(names(all));
  });

  it('answers an unknown command or option with exit 2 and one line', async () => {
    const home = await tempDir('program');
    const unknown = await runCli(['deplyo'], { home });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^animus: unknown command 'deplyo' \(Did you mean deploy\?\) \(see --help\)$/);
    const option = await runCli(['list', '--frobnicate'], { home });
    expect(option.code).toBe(2);
    expect(option.stderr).toMatch(/^animus: unknown option '--frobnicate' \(see --help\)$/);
    const missing = await runCli(['send', 'agent-721679f6-c8af-4e01-8677-dc042dc80368'], { home });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe("animus: missing required argument 'text' (see --help)");
  });

  it('colours for people only when asked or on a terminal, never under --json or NO_COLOR', async () => {
    const home = await tempDir('program');
    const ansi = /\x1b\[\d+m/;
    const colour = { NO_COLOR: undefined, FORCE_COLOR: '1' };
    const coloured = await runCli(['config', 'list'], { home, env: colour });
    expect(coloured.code).toBe(0);
    expect(coloured.stdout).toMatch(ansi);
    expect((await runCli(['config', 'list'], { home, env: { ...colour, NO_COLOR: '1' } })).stdout).not.toMatch(ansi);
    expect((await runCli(['config', 'list', '--no-color'], { home, env: colour })).stdout).not.toMatch(ansi);
    // Not a terminal, not forced: plain.
    expect((await runCli(['config', 'list'], { home, env: { NO_COLOR: undefined } })).stdout).not.toMatch(ansi);
    expect((await runCli(['config', 'list', '--json'], { home, env: colour })).stdout).not.toMatch(ansi);
  });

  it('exits quietly when the reader of its output goes away (animus list | head)', async () => {
    const home = await tempDir('program');
    const env = cliEnv({ home });
    // `true` exits at once: by the time animus writes, nobody reads the pipe.
    const result = await execa('bash', ['-c', `node ${BIN} list --json | true; echo "exit=\${PIPESTATUS[0]}"`], { env, extendEnv: false, reject: false });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('exit=0');
  });

  it('reports errors as JSON on stdout under --json', async () => {
    const home = await tempDir('program');
    const result = await runCli(['deploy', '../x', '--json'], { home });
    expect(result.code).toBe(2);
    expect(json(result)).toEqual({ error: { code: 'EBADID', message: expect.stringMatching(/contains a path/) } });
  });
});

describe('animus config', () => {
  it('stores preferences, and the home preference is used when neither --home nor ANIMUS_HOME is given', async () => {
    const root = await tempDir('config');
    const configDir = join(root, 'cfg');
    const env = { configDir, home: join(root, 'unused') };
    expect((await runCli(['config', 'set', 'home', join(root, 'from-config')], env)).code).toBe(0);
    expect((await runCli(['config', 'set', 'processManager', 'systemd'], env)).code).toBe(0);
    const get = await runCli(['config', 'get', 'home', '--json'], env);
    expect(json(get)).toEqual({ key: 'home', value: join(root, 'from-config') });

    const list = json<{ values: Record<string, string>; path: string; homeSource: string }>(await runCli(['config', 'list', '--json'], env));
    expect(list.values).toEqual({ home: join(root, 'from-config'), processManager: 'systemd' });
    expect(list.path.startsWith(configDir)).toBe(true);
    expect(list.homeSource).toBe('ANIMUS_HOME');

    // Without ANIMUS_HOME the saved home applies; --home beats it.
    const noEnvHome = { ...env, env: { ANIMUS_HOME: undefined } };
    const fromConfig = json<{ effectiveHome: string; homeSource: string }>(await runCli(['config', 'list', '--json'], noEnvHome));
    expect(fromConfig).toMatchObject({ effectiveHome: join(root, 'from-config'), homeSource: 'config' });
    const deploy = await runCli(['deploy', '721679f6-c8af-4e01-8677-dc042dc80368', '--mode', 'echo', '--json'], noEnvHome);
    expect(deploy.code, deploy.stderr).toBe(0);
    expect(json<{ dir: string; processManager: string }>(deploy)).toMatchObject({ dir: join(root, 'from-config', 'agent-721679f6-c8af-4e01-8677-dc042dc80368'), processManager: 'systemd' });

    expect((await runCli(['config', 'unset', 'processManager'], env)).code).toBe(0);
    expect(json<{ values: object }>(await runCli(['config', 'list', '--json'], env)).values).toEqual({ home: join(root, 'from-config') });
  });

  it.each([
    [['config', 'get', 'colour'], /unknown config key "colour"/],
    [['config', 'set', 'processManager', 'docker'], /processManager must be one of pm2, systemd/],
    [['config', 'set', 'home', ''], /home cannot be empty: use `animus config unset home`/],
  ])('refuses %j', async (args, message) => {
    const root = await tempDir('config');
    const result = await runCli(args, { home: join(root, 'h'), configDir: join(root, 'cfg') });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  it('refuses a corrupt preferences file with a clear line', async () => {
    const root = await tempDir('config');
    const configDir = join(root, 'cfg');
    await import('node:fs/promises').then(async (fs) => {
      await fs.mkdir(configDir, { recursive: true });
      await fs.writeFile(join(configDir, 'config.json'), '{ not json');
    });
    const result = await runCli(['config', 'list'], { home: join(root, 'h'), configDir });
    expect(result.code).toBe(5);
    expect(result.stderr).toMatch(/cannot read the animus config file/);
  });
});
