import { request } from 'node:http';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployTestAgent } from '../helpers/agents.js';
import { tempDir } from '../helpers/temp.js';
import { startServer, type RunningServer } from '../../src/serve/server.js';
import { readFile } from 'node:fs/promises';

/** The server's access rules over plain HTTP (the browser suite drives the pages themselves). */
let home: string;
let id: string;
const started: RunningServer[] = [];

beforeAll(async () => {
  home = join(await tempDir('serve'), 'home');
  id = (await deployTestAgent(home)).id;
}, 60_000);

afterAll(async () => {
  await Promise.all(started.map((s) => s.close()));
});

async function serve(host: string): Promise<RunningServer> {
  const server = await startServer({ home, host, port: 0, env: { ...process.env, PM2_HOME: `${home}.pm2` } });
  started.push(server);
  return server;
}

/** A raw request, so Host, Origin and Cookie are exactly what a browser or an attacker would send. */
function send(server: RunningServer, path: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: server.host, port: server.port, path, method: options.method ?? 'GET', headers: options.headers }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

describe('animus serve on loopback', () => {
  it('serves the fleet, /metrics and the assets, and makes the token file 0600 without showing it', async () => {
    const server = await serve('127.0.0.1');
    expect(server.tokenRequired).toBe(false);
    const token = (await readFile(server.tokenFile, 'utf8')).trim();
    expect((await stat(server.tokenFile)).mode & 0o777).toBe(0o600);
    const page = await send(server, '/');
    expect(page.status).toBe(200);
    expect(page.body).toContain(`data-agent="${id}"`);
    expect(page.body).not.toContain(token);
    // Nothing to sign out of on loopback, where no token is asked for.
    expect(page.body).not.toContain('action="/logout"');
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    const metrics = await send(server, '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(metrics.body).toContain(`animus_agent_up{agent="${id}",name=""} 0`);
    expect((await send(server, '/assets/app.js')).status).toBe(200);
    expect((await send(server, '/assets/../package.json')).status).toBe(404);
  });

  it('refuses a Host that is not a loopback name (DNS rebinding)', async () => {
    const server = await serve('127.0.0.1');
    const rebound = await send(server, '/metrics', { headers: { Host: `attacker.invalid:${server.port}` } });
    expect(rebound.status).toBe(403);
  });

  it('refuses a POST without the page CSRF token or from another origin', async () => {
    const server = await serve('127.0.0.1');
    const origin = `http://127.0.0.1:${server.port}`;
    const form = { 'Content-Type': 'application/x-www-form-urlencoded' };
    expect((await send(server, `/agents/${id}/restart`, { method: 'POST', headers: { ...form, Origin: origin }, body: 'csrf=nope' })).status).toBe(403);
    const page = await send(server, `/agents/${id}`);
    const csrf = /name="csrf" value="([0-9a-f]+)"/.exec(page.body)![1]!;
    expect((await send(server, `/agents/${id}/restart`, { method: 'POST', headers: { ...form, Origin: 'http://evil.invalid' }, body: `csrf=${csrf}` })).status).toBe(403);
    expect((await send(server, `/agents/${id}/restart`, { method: 'POST', headers: form, body: `csrf=${csrf}` })).status).toBe(403);
  });

  it('answers 404 for an id that is not an agent, and never redirects off the server after sign-in', async () => {
    const server = await serve('127.0.0.1');
    expect((await send(server, '/agents/..%2F..%2Fetc')).status).toBe(404);
    expect((await send(server, '/agents/agent-00000000-0000-4000-8000-000000000000')).status).toBe(404);
    const login = await send(server, '/login?next=//evil.invalid/');
    expect(login.body).toContain('name="next" value="/"');
  });
});

describe('animus serve off loopback (127.0.0.2)', () => {
  it('needs the token for every request but the assets, as a bearer or through the sign-in cookie', async () => {
    const server = await serve('127.0.0.2');
    expect(server.tokenRequired).toBe(true);
    const token = (await readFile(server.tokenFile, 'utf8')).trim();
    const denied = await send(server, '/metrics');
    expect(denied.status).toBe(401);
    expect(denied.headers['www-authenticate']).toBe('Bearer realm="animus"');
    expect((await send(server, '/api/fleet')).status).toBe(401);
    expect((await send(server, '/')).headers.location).toBe('/login?next=%2F');
    expect((await send(server, '/metrics', { headers: { Authorization: 'Bearer 0123' } })).status).toBe(401);
    expect((await send(server, '/metrics', { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);

    const origin = `http://127.0.0.2:${server.port}`;
    const form = { 'Content-Type': 'application/x-www-form-urlencoded', Origin: origin };
    expect((await send(server, '/login', { method: 'POST', headers: form, body: 'token=wrong' })).status).toBe(401);
    const signedIn = await send(server, '/login', { method: 'POST', headers: form, body: `token=${token}&next=%2F` });
    expect(signedIn.status).toBe(303);
    const cookie = String(signedIn.headers['set-cookie']);
    expect(cookie).toMatch(/^animus_session=[0-9a-f]{64}; HttpOnly; SameSite=Strict; Path=\//);
    expect(cookie).not.toContain(token);
    const page = await send(server, '/', { headers: { Cookie: cookie.split(';')[0]! } });
    expect(page.status).toBe(200);
    expect(page.body).toContain(`data-agent="${id}"`);
  });
});
