/**
 * The Letta and Telegram stand-ins of test/helpers, started outside vitest for the hand-run
 * cluster test (cluster.sh bundles this file with esbuild and runs it with node inside the
 * cluster's network namespace). They listen on the node's address there, which the pods
 * reach through their bridge; one Letta for both agents, one Bot API server per bot token.
 *
 *   node stand-ins.mjs --host 10.0.77.2 --api-key K --token T1 --token T2 --state FILE
 *
 * FILE gets {"letta": URL, "telegram": [URL...], "control": URL} once all listen. The control
 * server (127.0.0.1) answers GET /stats: what each stand-in has seen, for the script's checks.
 */
import { createServer } from 'node:http';
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { startLettaServer } from '../../helpers/letta-server.js';
import { startTelegramServer } from '../../helpers/telegram-server.js';

const args = process.argv.slice(2);
const value = (flag: string): string[] => args.flatMap((arg, i) => (arg === flag && args[i + 1] ? [args[i + 1]!] : []));
const host = value('--host')[0] ?? '127.0.0.1';
const apiKey = value('--api-key')[0];
const statePath = value('--state')[0];
if (!apiKey || !statePath) {
  process.stderr.write('usage: stand-ins --host ADDR --api-key KEY --token TOKEN... --state FILE\n');
  process.exit(2);
}

const letta = await startLettaServer({ apiKey, host, thinkMs: 50 });
letta.reply = (text, agentId) => `reply from ${agentId.slice(0, 14)}: ${text}`;
const telegram = await Promise.all(value('--token').map((token) => startTelegramServer({ token, host })));

const control = createServer((req, res) => {
  if (req.url !== '/stats') {
    res.writeHead(404).end();
    return;
  }
  const byAgent: Record<string, number> = {};
  for (const request of letta.messageRequests()) {
    const agent = /\/agents\/([^/]+)\//.exec(request.path)?.[1] ?? '?';
    byAgent[agent] = (byAgent[agent] ?? 0) + 1;
  }
  const stats = {
    letta: { messages: letta.messageRequests().length, byAgent, maxConcurrentRuns: letta.maxConcurrentRuns },
    telegram: telegram.map((server) => ({
      getUpdates: server.requests.filter((request) => request.method === 'getUpdates').length,
      sent: server.sent.length,
    })),
  };
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats));
});
await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve));

writeFileSync(
  statePath,
  JSON.stringify({ letta: letta.url, telegram: telegram.map((server) => server.url), control: `http://127.0.0.1:${(control.address() as AddressInfo).port}` }),
);
const stop = async () => {
  control.close();
  await Promise.all([letta.close(), ...telegram.map((server) => server.close())]);
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
