// The attacks of the live systemd suite, run from inside an agent's own unit: the suite
// makes this file the package.json `main` of one agent's clone, so systemd starts it
// exactly as it starts a runtime (same template, same sandbox, same account).
//
// First run: tries each attack, records what happened in probe-result.json in the agent's
// own folder (the one place it may write), then replaces its logs/ files with symlinks to
// another agent's .env and to /etc, and exits 1 so that systemd restarts it. Second run
// (probe-done exists): hands over to the real runtime (main.js), which opens logs/ again.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const dir = process.env.ANIMUS_AGENT_DIR;
const done = path.join(dir, 'probe-done');

if (fs.existsSync(done)) {
  import(path.join(__dirname, 'main.js'));
} else {
  const target = JSON.parse(fs.readFileSync(path.join(dir, 'probe-target.json'), 'utf8'));
  const results = [];
  const attack = (name, fn) => {
    try {
      const detail = fn();
      // fn returns a string when the attack did not get through without an error (contained).
      results.push(typeof detail === 'string' ? { name, escaped: false, detail } : { name, escaped: true, detail: 'succeeded' });
    } catch (error) {
      results.push({ name, escaped: false, detail: error.code || String(error.message).split('\n')[0] });
    }
  };
  const write = (file) => () => fs.writeFileSync(file, `written by the probe in ${dir}\n`);

  attack(`read another agent's .env (${target.other}/.env)`, () => fs.readFileSync(path.join(target.other, '.env'), 'utf8'));
  attack(`read another agent's .env through /proc/${target.otherPid}/root`, () => fs.readFileSync(`/proc/${target.otherPid}/root${target.other}/.env`, 'utf8'));
  attack(`read another agent's .env through /proc/${target.otherPid}/cwd`, () => fs.readFileSync(`/proc/${target.otherPid}/cwd/.env`, 'utf8'));
  attack('read /etc/shadow', () => fs.readFileSync('/etc/shadow', 'utf8'));
  attack('write /etc', write(`/etc/animus-probe-${target.token}`));
  attack('write the home', write(path.join(path.dirname(dir), `animus-probe-${target.token}`)));
  attack("write another agent's folder", write(path.join(target.other, `animus-probe-${target.token}`)));
  attack('write /root', write(`/root/animus-probe-${target.token}`));
  attack('write /home/alice', write(`/home/alice/animus-probe-${target.token}`));
  attack('write /var/tmp', () => {
    write(`/var/tmp/animus-probe-${target.token}`)();
    return 'contained: a private /var/tmp (the suite checks the machine has no such file)';
  });
  attack('write /dev/shm', write(`/dev/shm/animus-probe-${target.token}`));
  attack('write /run', write(`/run/animus-probe-${target.token}`));
  attack('write /run/lock', write(`/run/lock/animus-probe-${target.token}`));
  attack('signal PID 1', () => process.kill(1, 0));
  attack(`signal another agent's runtime (pid ${target.otherPid})`, () => process.kill(target.otherPid, 0));
  if (target.managerPid) attack(`signal the user's systemd manager (pid ${target.managerPid})`, () => process.kill(target.managerPid, 0));
  attack('systemd-run a unit outside the sandbox', () => {
    const run = spawnSync('systemd-run', [...(target.scope === 'user' ? ['--user'] : []), '--wait', '--quiet', '-p', 'Type=oneshot', '/bin/sh', '-c', `echo escaped > /var/tmp/animus-probe-run-${target.token}`], {
      encoding: 'utf8',
      env: { ...process.env, XDG_RUNTIME_DIR: `/run/user/${process.getuid()}`, DBUS_SESSION_BUS_ADDRESS: `unix:path=/run/user/${process.getuid()}/bus` },
    });
    if (run.error) throw run.error;
    if (run.status !== 0) throw new Error(`exit ${run.status}: ${(run.stderr || '').trim().split('\n')[0]}`);
  });

  fs.writeFileSync(path.join(dir, 'probe-result.json'), JSON.stringify({ uid: process.getuid(), results }, null, 2));
  // The log files become symlinks out of the folder; whatever opens them next must not follow.
  const logs = path.join(dir, 'logs');
  for (const [name, to] of [
    ['runtime.log', path.join(target.other, '.env')],
    ['runtime.err.log', `/etc/animus-escape-${target.token}`],
  ]) {
    fs.rmSync(path.join(logs, name), { force: true });
    fs.symlinkSync(to, path.join(logs, name));
  }
  fs.writeFileSync(done, '');
  process.stdout.write(`probe finished: ${results.length} attacks\n`);
  process.exit(1);
}
