/**
 * The Ansible role and playbooks (ansible/) on two real hosts: network namespaces joined by veth
 * pairs (10.213.1.2 and 10.213.2.2), each with its own sshd and its own root (an overlay of a
 * cached, debootstrapped Debian 12 root; test/ansible/fleet-hosts.sh). The playbook installs this
 * build and deploys two echo agents on each; a second run changes nothing; the move playbook
 * moves one agent while messages keep arriving; the collect playbook reports all four agents.
 *
 * Skips with a printed reason where it cannot run (not root, no ansible, no debootstrap...),
 * unless ANIMUS_LIVE_REQUIRED=1, where a missing prerequisite fails it.
 */
import { execa, type ResultPromise } from 'execa';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/cli.js';

const HOSTS = join(REPO_ROOT, 'test', 'ansible', 'fleet-hosts.sh');
const TRAFFIC = join(REPO_ROOT, 'test', 'ansible', 'traffic.sh');
const ANSIBLE = join(REPO_ROOT, 'ansible');
const HOME = '/home/animus/animus';

const AGENTS = {
  h1: ['agent-5d0c1e2f-3a4b-4c6d-8e9f-a0b1c2d3e4f5', 'agent-6e1d2f3a-4b5c-4d7e-9f0a-b1c2d3e4f5a6'],
  h2: ['agent-7f2e3a4b-5c6d-4e8f-a01b-c2d3e4f5a6b7', 'agent-8a3f4b5c-6d7e-4f90-b12c-d3e4f5a6b7c8'],
};
const MOVED = AGENTS.h1[1]!;
const API_KEYS = Object.fromEntries([...AGENTS.h1, ...AGENTS.h2].map((id, i) => [id, `sk-let-4f9a1c2e8b7d${i}a${i}`]));

function missingPrerequisites(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('needs root (network namespaces, overlay mounts, chroot)');
  for (const tool of ['ansible-playbook', 'ansible-vault', 'ip', 'unshare', 'debootstrap', 'ssh', 'ssh-keygen', 'chroot']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) missing.push(`${tool} is not installed (apt-get install ansible openssh-server openssh-client iproute2 debootstrap)`);
  }
  if (!existsSync(join(REPO_ROOT, 'dist', 'runtime', 'main.js'))) missing.push('dist/ is not built (npm run build)');
  return missing;
}

const missing = missingPrerequisites();
const required = process.env.ANIMUS_LIVE_REQUIRED === '1';
if (missing.length > 0 && !required) console.log(`test/ansible/fleet.test.ts skipped: ${missing.join('; ')}`);

describe.runIf(missing.length > 0 && required)('ansible fleet prerequisites', () => {
  it('are all present (ANIMUS_LIVE_REQUIRED=1)', () => {
    expect(missing).toEqual([]);
  });
});

describe.runIf(missing.length === 0)('ansible fleet on two namespace hosts', () => {
  let dir = '';
  let bundle = '';
  const env: Record<string, string> = {};
  const background: ResultPromise[] = [];
  const timings: Record<string, number> = {};

  const timed = async <T>(label: string, work: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    try {
      return await work();
    } finally {
      timings[label] = (Date.now() - t0) / 1000;
    }
  };

  const playbook = async (name: string, ...extra: string[]) => {
    const result = await execa(
      'ansible-playbook',
      ['-i', join(dir, 'inventory'), join(ANSIBLE, 'playbooks', name), '--vault-password-file', join(dir, 'vault-pass'), '-e', `animus_bundle=${bundle}`, '-e', `animus_move_stash=${join(dir, 'moves')}`, ...extra],
      { cwd: ANSIBLE, env, extendEnv: false, reject: false, timeout: 600_000, all: true },
    );
    return { code: result.exitCode ?? -1, output: result.all ?? '', recap: parseRecap(result.all ?? '') };
  };

  /** A shell command on test host n, as root. */
  const onHost = async (n: 1 | 2, command: string) => {
    const result = await execa(HOSTS, ['ssh', dir, String(n), command], { reject: false, timeout: 120_000 });
    return { code: result.exitCode ?? -1, stdout: result.stdout, stderr: result.stderr };
  };
  /** animus on test host n, as the agents' account. */
  const animus = (n: 1 | 2, args: string) => onHost(n, `sudo -u animus -H ANIMUS_HOME=${HOME} animus ${args}`);

  beforeAll(async () => {
    dir = await mkdtemp('/tmp/animus-fleet-');
    Object.assign(env, {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/root',
      LANG: 'C.UTF-8',
      ANSIBLE_CONFIG: join(ANSIBLE, 'ansible.cfg'),
      ANSIBLE_ROLES_PATH: join(ANSIBLE, 'roles'),
      ANSIBLE_HOME: join(dir, 'ansible-home'),
      ANSIBLE_LOCAL_TEMP: join(dir, 'ansible-tmp'),
      ANSIBLE_SSH_CONTROL_PATH_DIR: join(dir, 'cp'),
      ANSIBLE_HOST_KEY_CHECKING: 'False',
      ANSIBLE_NOCOLOR: '1',
      ANSIBLE_FORCE_COLOR: '0',
      ANSIBLE_RETRY_FILES_ENABLED: '0',
    });
    bundle = await timed('bundle', async () => (await execa('bash', [join(ANSIBLE, 'build-bundle.sh'), join(dir, 'bundles')])).stdout.trim());
    await timed('hosts', () => execa(HOSTS, ['up', dir, '1', '2'], { timeout: 900_000, stdio: ['ignore', 'inherit', 'inherit'] }));
    await writeInventory(dir);
  }, 1_200_000);

  afterAll(async () => {
    if (!dir) return;
    await writeFile(join(dir, 'stop'), '').catch(() => {});
    await writeFile(join(dir, 'stop-now'), '').catch(() => {});
    for (const child of background) {
      if (child.pid) killPid(child.pid);
      await child.catch(() => {});
    }
    await execa(HOSTS, ['down', dir], { reject: false, timeout: 120_000 });
    // ssh control masters (Ansible's and traffic.sh's) live on with this run's folder in their names.
    for (const pid of processesMentioning(dir)) killPid(pid);
    await rm(dir, { recursive: true, force: true });
    console.log(`ansible fleet timings (s): ${JSON.stringify(timings)}`);
  }, 180_000);

  it('keeps every secret in the vault: no plain inventory file holds a key', async () => {
    const plain = await readFile(join(dir, 'inventory', 'group_vars', 'all', 'vault.yml'), 'utf8');
    expect(plain.startsWith('$ANSIBLE_VAULT;1.1;AES256')).toBe(true);
    for (const file of inventoryFiles(join(dir, 'inventory'))) {
      const text = readFileSync(file, 'utf8');
      for (const key of Object.values(API_KEYS)) expect(text, file).not.toContain(key);
    }
  });

  it('installs animus on both hosts and starts the two agents each one owns, from the vault', async () => {
    const run = await timed('site', () => playbook('site.yml'));
    expect(run.code, run.output).toBe(0);
    expect(run.recap.h1?.failed).toBe(0);
    expect(run.recap.h2?.failed).toBe(0);
    expect(run.recap.h1?.changed).toBeGreaterThan(0);
    for (const n of [1, 2] as const) {
      const list = await animus(n, '--json list');
      expect(list.code, list.stderr).toBe(0);
      const agents = JSON.parse(list.stdout) as Array<{ id: string; state?: string; mode?: string }>;
      expect(agents.map((a) => a.id).sort()).toEqual([...AGENTS[`h${n}`]].sort());
      for (const agent of agents) {
        expect(agent.state).toBe('online');
        expect(agent.mode).toBe('echo');
      }
      for (const id of AGENTS[`h${n}`]) {
        const modes = await onHost(n, `stat -c '%a %U' ${HOME}/${id} ${HOME}/${id}/.env ${HOME}/${id}/animus.db`);
        expect(modes.stdout.split('\n')).toEqual(['700 animus', '600 animus', '600 animus']);
        // The key came from the vault into the .env, and nowhere else on the host's process list.
        const key = await onHost(n, `grep -c '^AGENT_API_KEY=${API_KEYS[id]}$' ${HOME}/${id}/.env; ps -eo args | grep -c '${API_KEYS[id]}' || true`);
        expect(key.stdout.split('\n')[0]).toBe('1');
        const settings = await animus(n, `--json settings show --agent ${id}`);
        expect((JSON.parse(settings.stdout) as { settings: { memory_limit_mb: number } }).settings.memory_limit_mb).toBe(192);
        const sent = await animus(n, `--json send ${id} hello-from-h${n} --wait --timeout 60`);
        expect(sent.code, sent.stderr).toBe(0);
        expect((JSON.parse(sent.stdout) as { reply: string }).reply).toContain(`hello-from-h${n}`);
      }
    }
  }, 900_000);

  it('changes nothing on a second run: no .env rewritten, no database replaced', async () => {
    const fingerprint = async (n: 1 | 2) => (await onHost(n, `cd ${HOME} && stat -c '%n %i %a %Y' agent-*/.env agent-*/animus.db agent-*/settings.json && sha256sum agent-*/.env`)).stdout;
    const before = [await fingerprint(1), await fingerprint(2)];
    const run = await timed('site-again', () => playbook('site.yml'));
    expect(run.code, run.output).toBe(0);
    expect(run.recap.h1).toMatchObject({ changed: 0, failed: 0 });
    expect(run.recap.h2).toMatchObject({ changed: 0, failed: 0 });
    expect([await fingerprint(1), await fingerprint(2)]).toEqual(before);
  }, 900_000);

  it('moves an agent from h1 to h2 while messages keep arriving: none lost, never two brokers', async () => {
    // stdio ignored: their ssh control masters would hold a pipe open past their own exit.
    const sender = execa(TRAFFIC, ['send', dir, MOVED], { reject: false, stdio: 'ignore' });
    const watcher = execa(TRAFFIC, ['watch', dir, MOVED], { reject: false, stdio: 'ignore' });
    background.push(sender, watcher);
    // Traffic on h1 before the move starts.
    await waitFor(() => lines(join(dir, 'sent')).length >= 5);
    const run = await timed('move', () => playbook('move.yml', '-e', `animus_move_agent=${MOVED}`, '-e', 'animus_move_from=h1', '-e', 'animus_move_to=h2'));
    expect(run.code, run.output).toBe(0);
    // Traffic on h2 after the move.
    await waitFor(() => lines(join(dir, 'sent')).filter((line) => line.endsWith(' 2')).length >= 5);
    await writeFile(join(dir, 'stop'), '');
    await Promise.all([sender, watcher]);

    const sent = lines(join(dir, 'sent')).map((line) => line.split(' ') as [string, string]);
    const onH1 = sent.filter(([, host]) => host === '1').length;
    const onH2 = sent.filter(([, host]) => host === '2').length;
    expect(onH1).toBeGreaterThan(0);
    expect(onH2).toBeGreaterThan(0);
    const refused = lines(join(dir, 'refused')).length;

    // Never two brokers: in every sample, at most one live runtime for the agent on both hosts
    // together; the watcher saw it on h1, then on h2.
    const samples = lines(join(dir, 'samples')).map((line) => line.split(' '));
    const counted = samples.filter(([, a, b]) => a !== 'x' && b !== 'x').map(([, a, b]) => [Number(a), Number(b)] as const);
    expect(counted.length).toBeGreaterThan(10);
    expect(counted.filter(([a, b]) => a + b > 1)).toEqual([]);
    console.log(`move: ${sent.length} messages accepted (${onH1} on h1, ${onH2} on h2), ${refused} sends refused while the agent was between hosts, ${counted.length} samples of both hosts, never two runtimes`);
    const seen = lines(join(dir, 'samples')).slice(-15).join('\n');
    expect(counted.some(([a]) => a === 1), seen).toBe(true);
    expect(counted.some(([, b]) => b === 1), seen).toBe(true);

    // Nothing lost: every message accepted on either host is in h2's database and answered.
    await waitFor(async () => (await queueOf(2)).filter((row) => row.status === 'completed').length >= sent.length + 1, 120_000);
    const rows = await queueOf(2);
    const texts = new Set(rows.filter((row) => row.status === 'completed').map((row) => row.message));
    expect(sent.map(([text]) => text).filter((text) => !texts.has(text))).toEqual([]);
    expect(texts.has('hello-from-h1')).toBe(true);

    // On h1 the agent is gone from the home (kept in the trash), not running, and listed nowhere.
    const list = await animus(1, '--json list');
    expect((JSON.parse(list.stdout) as Array<{ id: string }>).map((a) => a.id)).toEqual([AGENTS.h1[0]]);
    const trash = await onHost(1, `ls ${HOME}/.trash/*/ | grep -c '^${MOVED}-moved-'`);
    expect(trash.stdout.trim()).toBe('1');
    const h2 = await animus(2, `--json status ${MOVED}`);
    expect((JSON.parse(h2.stdout) as Array<{ state: string }>)[0]?.state).toBe('online');
  }, 900_000);

  it('refuses to deploy the moved agent on h1 again while the inventory still places it there', async () => {
    const run = await playbook('site.yml', '--limit', 'h1');
    expect(run.code).not.toBe(0);
    expect(run.output).toContain(`${MOVED} was moved away from h1`);
    const list = await animus(1, '--json list');
    expect((JSON.parse(list.stdout) as Array<{ id: string }>).map((a) => a.id)).toEqual([AGENTS.h1[0]]);
  }, 900_000);

  it('collects one health report listing all four agents from both hosts', async () => {
    const report = join(dir, 'fleet-health.json');
    const run = await timed('collect', () => playbook('collect.yml', '-e', `animus_report=${report}`));
    expect(run.code, run.output).toBe(0);
    const doc = JSON.parse(await readFile(report, 'utf8')) as {
      healthy: boolean;
      summary: { hosts: number; hostsRead: number; agents: number; unhealthy: number };
      hosts: Array<{ host: string; health: { agents: Array<{ id: string; healthy: boolean }> } }>;
    };
    expect(doc.summary).toMatchObject({ hosts: 2, hostsRead: 2, agents: 4, unhealthy: 0 });
    expect(doc.healthy).toBe(true);
    const placed = Object.fromEntries(doc.hosts.map((host) => [host.host, host.health.agents.map((a) => a.id).sort()]));
    expect(placed).toEqual({ h1: [AGENTS.h1[0]], h2: [...AGENTS.h2, MOVED].sort() });
  }, 900_000);

  it('updates host by host and stops at the first host whose update fails', async () => {
    // h1's remaining agent has a local change in its clone: `animus update` refuses it.
    const clone = `${HOME}/${AGENTS.h1[0]}/runtime`;
    expect((await onHost(1, `sudo -u animus sh -c 'echo "// local edit" >> ${clone}/main.js'`)).code).toBe(0);
    const run = await timed('update-failing', () => playbook('update.yml'));
    expect(run.code).not.toBe(0);
    expect(run.recap.h1?.failed).toBe(1);
    // h2 was never touched: the play stopped after h1.
    expect(run.recap.h2).toBeUndefined();
    expect(run.output).not.toMatch(/\[h2\]/);
    expect((await onHost(1, `sudo -u animus git -C ${clone} checkout -- main.js`)).code).toBe(0);
    const again = await timed('update', () => playbook('update.yml'));
    expect(again.code, again.output).toBe(0);
    expect(again.recap.h1?.failed).toBe(0);
    expect(again.recap.h2?.failed).toBe(0);
  }, 900_000);

  it('puts the agent back, running, on its host when a move fails half-way', async () => {
    // h1 cannot receive the archive: its incoming folder is a file.
    expect((await onHost(1, `rm -rf ${HOME}/.animus/incoming && sudo -u animus touch ${HOME}/.animus/incoming`)).code).toBe(0);
    const before = await queueOf(2);
    const run = await timed('move-failing', () => playbook('move.yml', '-e', `animus_move_agent=${MOVED}`, '-e', 'animus_move_from=h2', '-e', 'animus_move_to=h1'));
    expect(run.code).not.toBe(0);
    expect(run.output).toContain('it runs on h2 again');
    const status = await animus(2, `--json status ${MOVED}`);
    expect((JSON.parse(status.stdout) as Array<{ state: string }>)[0]?.state).toBe('online');
    expect(await queueOf(2)).toEqual(before);
    const list = await animus(1, '--json list');
    expect((JSON.parse(list.stdout) as Array<{ id: string }>).map((a) => a.id)).toEqual([AGENTS.h1[0]]);
    const sent = await animus(2, `--json send ${MOVED} after-failed-move --wait --timeout 60`);
    expect(sent.code, sent.stderr).toBe(0);
    await onHost(1, `rm -f ${HOME}/.animus/incoming`);
  }, 900_000);

  async function queueOf(n: 1 | 2): Promise<Array<{ message: string; status: string }>> {
    const script = `const D=require(require('path').join(require('fs').realpathSync('/usr/local/bin/animus'),'../../node_modules/better-sqlite3'));const db=new D('${HOME}/${MOVED}/animus.db',{readonly:true});console.log(JSON.stringify(db.prepare('SELECT m.message, q.status FROM messages m JOIN queue q ON q.message_id = m.id').all()))`;
    const result = await onHost(n, `sudo -u animus node -e ${shellQuote(script)}`);
    return result.code === 0 ? (JSON.parse(result.stdout) as Array<{ message: string; status: string }>) : [];
  }
});

/** The inventory: two hosts, two agents each (host_vars), their keys in an encrypted vault. */
async function writeInventory(dir: string): Promise<void> {
  const inv = join(dir, 'inventory');
  await mkdir(join(inv, 'host_vars'), { recursive: true });
  await mkdir(join(inv, 'group_vars', 'all'), { recursive: true });
  const hosts = Object.keys(AGENTS).map((name, i) => `    ${name}:\n      ansible_host: 10.213.${i + 1}.2\n`).join('');
  await writeFile(
    join(inv, 'hosts.yml'),
    `all:\n  vars:\n    ansible_user: root\n    ansible_ssh_private_key_file: ${join(dir, 'id_ed25519')}\n    ansible_ssh_common_args: -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no\n  hosts:\n${hosts}`,
  );
  for (const [host, ids] of Object.entries(AGENTS)) {
    const agents = ids
      .map((id, i) => `  - id: ${id}\n    name: ${host}-agent-${i + 1}\n    mode: echo\n    settings:\n      queue_refresh: 1\n      memory_limit_mb: 192\n      agent.description: "runs on ${host}"\n    env:\n      TELEGRAM_OWNER_ID: "4242"\n`)
      .join('');
    await writeFile(join(inv, 'host_vars', `${host}.yml`), `animus_agents:\n${agents}`);
  }
  const secrets = Object.entries(API_KEYS).map(([id, key]) => `  ${id}:\n    AGENT_API_KEY: ${key}\n`).join('');
  const vault = join(inv, 'group_vars', 'all', 'vault.yml');
  await writeFile(vault, `animus_agent_secrets:\n${secrets}`, { mode: 0o600 });
  await writeFile(join(dir, 'vault-pass'), 'k8Qz2vN4pR7sW1xY\n', { mode: 0o600 });
  await execa('ansible-vault', ['encrypt', vault, '--vault-password-file', join(dir, 'vault-pass')], { env: { PATH: process.env.PATH ?? '', HOME: dir, ANSIBLE_HOME: join(dir, 'ansible-home') }, extendEnv: false });
}

type Recap = Record<string, { ok: number; changed: number; unreachable: number; failed: number }>;

/** PLAY RECAP lines: `h1 : ok=12 changed=0 unreachable=0 failed=0 ...`. */
function parseRecap(output: string): Recap {
  const recap: Recap = {};
  const at = output.lastIndexOf('PLAY RECAP');
  if (at < 0) return recap;
  for (const match of output.slice(at).matchAll(/^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)/gm)) {
    recap[match[1]!] = { ok: Number(match[2]), changed: Number(match[3]), unreachable: Number(match[4]), failed: Number(match[5]) };
  }
  return recap;
}

function inventoryFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && !entry.name.startsWith('vault'))
    .map((entry) => join(entry.parentPath, entry.name));
}

function lines(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the fleet');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text)) pids.push(Number(entry));
    } catch {
      // gone
    }
  }
  return pids;
}

function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}
