import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { userInfo } from 'node:os';
import { extname, join } from 'node:path';
import { parseAgentId } from '../core/agent-id.js';
import { AnimusError, describeError } from '../core/errors.js';
import { packageRoot } from '../core/package-root.js';
import { requireAgent } from '../instances/registry.js';
import { Credentials, isLoopbackBind, loadOrCreateToken, loopbackHostHeader, sameOrigin, SESSION_COOKIE, tokenPath } from './auth.js';
import { agentPage, fleetPage, loginPage, messagePage, type SignOut } from './pages.js';

export interface ServeOptions {
  home: string;
  host: string;
  port: number;
  env?: NodeJS.ProcessEnv;
  /** The built page assets (default: the package's dist/serve/assets). */
  assetsDir?: string;
  /** A request that failed inside animus (a bug or an I/O fault): the CLI prints it. */
  onError?: (error: unknown) => void;
}

export interface RunningServer {
  url: string;
  host: string;
  port: number;
  /** Whether every request needs the token (bound to an address other than 127.0.0.1/::1). */
  tokenRequired: boolean;
  tokenFile: string;
  close(): Promise<void>;
}

const VERBS = new Set(['start', 'stop', 'restart']);
const TYPES: Record<string, string> = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.map': 'application/json' };
const MAX_BODY = 8 * 1024;

/**
 * `animus serve`: the Prometheus endpoint and the dashboard, in one small HTTP server
 * with no framework. Pages are rendered here from the same domain calls the CLI
 * makes (status and metrics, health, logs); the buttons run the same fleet verbs as
 * `animus start|stop|restart`, under the agent's operation lock.
 */
export async function startServer(options: ServeOptions): Promise<RunningServer> {
  const token = await loadOrCreateToken(options.home);
  const credentials = new Credentials(token);
  const tokenRequired = !isLoopbackBind(options.host);
  // Only a dashboard one signs in to has anything to sign out of.
  const signOut = tokenRequired ? { csrf: credentials.csrf } : undefined;
  const assetsDir = options.assetsDir ?? join(packageRoot(), 'dist', 'serve', 'assets');
  const assets = loadAssets(assetsDir);
  const results = new Map<string, { ok: boolean; text: string }>();
  // Kept for the server's life: each scrape and page opens only the databases written since the last.
  const { loadMetricsCache } = await import('../metrics/metrics-cache.js');
  const cache = loadMetricsCache(options.home);
  const scrape = coalesce(async () => {
    const started = performance.now();
    const [{ collectMetrics }, { renderPrometheus }] = await Promise.all([import('../metrics/collect.js'), import('../metrics/prometheus.js')]);
    const agents = await collectMetrics({ home: options.home, env: options.env, cache });
    return renderPrometheus(agents, { durationMs: performance.now() - started });
  });

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? '/', 'http://animus.invalid');
    const path = url.pathname;
    securityHeaders(response);

    if (!tokenRequired && !loopbackHostHeader(request)) return send(response, 403, 'text/plain; charset=utf-8', 'animus serve answers only to 127.0.0.1, localhost and [::1]\n');
    if (request.method === 'GET' && path.startsWith('/assets/')) {
      const asset = assets.get(path.slice('/assets/'.length));
      if (!asset) return send(response, 404, 'text/plain; charset=utf-8', 'not found\n');
      response.setHeader('Cache-Control', 'max-age=3600');
      return send(response, 200, asset.type, asset.body);
    }
    if (path === '/login') return login(request, response, url);
    if (path === '/logout') return logout(request, response);

    const authenticated = !tokenRequired || credentials.authenticated(request);
    if (!authenticated) {
      if (request.method === 'GET' && (path === '/' || path.startsWith('/agents/'))) return redirect(response, `/login?next=${encodeURIComponent(path)}`);
      response.setHeader('WWW-Authenticate', 'Bearer realm="animus"');
      return send(response, 401, 'text/plain; charset=utf-8', 'the token is required: send "Authorization: Bearer <token>" (it is in .animus/serve-token in the animus home)\n');
    }

    if (request.method === 'GET' && path === '/metrics') {
      const { PROMETHEUS_CONTENT_TYPE } = await import('../metrics/prometheus.js');
      return send(response, 200, PROMETHEUS_CONTENT_TYPE, await scrape());
    }
    if (request.method === 'GET' && path === '/api/fleet') {
      const { statusWithMetrics } = await import('../metrics/status.js');
      return send(response, 200, 'application/json', JSON.stringify(await statusWithMetrics(options.home, [], options.env, cache)));
    }
    if (request.method === 'GET' && path === '/') {
      const { statusWithMetrics } = await import('../metrics/status.js');
      return send(response, 200, 'text/html; charset=utf-8', fleetPage(options.home, await statusWithMetrics(options.home, [], options.env, cache), signOut));
    }
    const agentMatch = /^\/agents\/([^/]+)(?:\/(start|stop|restart))?$/.exec(path);
    if (agentMatch) {
      const id = agentId(agentMatch[1]!);
      if (!id) return send(response, 404, 'text/html; charset=utf-8', messagePage('not found', `${agentMatch[1]} is not an agent id`));
      if (request.method === 'GET' && !agentMatch[2]) {
        const flash = results.get(url.searchParams.get('result') ?? '');
        return send(response, 200, 'text/html; charset=utf-8', await renderAgent(options, id, credentials.csrf, flash, signOut));
      }
      if (request.method === 'POST' && agentMatch[2] && VERBS.has(agentMatch[2])) {
        const form = await readForm(request);
        if (!sameOrigin(request) || !credentials.checkCsrf(form.get('csrf') ?? undefined)) {
          return send(response, 403, 'text/html; charset=utf-8', messagePage('refused', 'refused: the request did not come from this dashboard (origin or CSRF token missing or wrong)'));
        }
        const outcome = await runVerb(options, id, agentMatch[2] as 'start' | 'stop' | 'restart');
        const key = randomBytes(8).toString('hex');
        results.set(key, outcome);
        if (results.size > 100) results.delete(results.keys().next().value!);
        return redirect(response, `/agents/${id}?result=${key}`);
      }
    }
    return send(response, 404, 'text/html; charset=utf-8', messagePage('not found', `nothing at ${path}`));
  };

  const login = async (request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> => {
    const next = safeNext(url.searchParams.get('next'));
    if (request.method === 'GET') return send(response, 200, 'text/html; charset=utf-8', loginPage({ failed: false, next }));
    if (request.method !== 'POST') return send(response, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    const form = await readForm(request);
    if (!sameOrigin(request)) return send(response, 403, 'text/html; charset=utf-8', messagePage('refused', 'refused: the sign-in did not come from this dashboard'));
    if (!credentials.checkToken(form.get('token') ?? '')) return send(response, 401, 'text/html; charset=utf-8', loginPage({ failed: true, next: safeNext(form.get('next')) }));
    response.setHeader('Set-Cookie', `${SESSION_COOKIE}=${credentials.session}; HttpOnly; SameSite=Strict; Path=/`);
    return redirect(response, safeNext(form.get('next')));
  };

  /**
   * Drops this browser's session cookie. The cookie is derived from the token, so a copy
   * of it taken elsewhere stays good until the token changes: delete .animus/serve-token
   * and start `animus serve` again to sign every browser out.
   */
  const logout = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    if (request.method !== 'POST') return send(response, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    const form = await readForm(request);
    if (!sameOrigin(request) || !credentials.checkCsrf(form.get('csrf') ?? undefined)) {
      return send(response, 403, 'text/html; charset=utf-8', messagePage('refused', 'refused: the sign-out did not come from this dashboard'));
    }
    response.setHeader('Set-Cookie', `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`);
    return redirect(response, '/login');
  };

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (!(error instanceof AnimusError)) options.onError?.(error);
      if (response.headersSent) return response.destroy();
      const status = error instanceof AnimusError && (error.code === 'ENOAGENT' || error.code === 'ENOTFOUND') ? 404 : error instanceof AnimusError && error.code === 'EUSAGE' ? 400 : 500;
      send(response, status, 'text/html; charset=utf-8', messagePage('error', describeError(error)));
    });
  });
  await listen(server, options.host, options.port);
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const hostInUrl = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    url: `http://${hostInUrl}:${port}/`,
    host: options.host,
    port,
    tokenRequired,
    tokenFile: tokenPath(options.home),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function renderAgent(options: ServeOptions, id: string, csrf: string, flash: { ok: boolean; text: string } | undefined, signOut: SignOut | undefined): Promise<string> {
  const paths = await requireAgent(options.home, id);
  const [{ statusWithMetrics }, { readHourlySeries }, { agentDbPath }, { runHealth }, { managerOpener }, { readAgentLogs }] = await Promise.all([
    import('../metrics/status.js'),
    import('../metrics/series.js'),
    import('../instances/db-path.js'),
    import('../health/run-health.js'),
    import('../health/process-probe.js'),
    import('../process/logs.js'),
  ]);
  const [rows, health, logs] = await Promise.all([
    statusWithMetrics(options.home, [id], options.env),
    runHealth({ home: options.home, ids: [id], openManager: managerOpener(options.env ?? process.env), cache: false }).catch(() => undefined),
    readAgentLogs(options.home, id, 40, options.env).catch(() => undefined),
  ]);
  let series = null;
  try {
    series = readHourlySeries(agentDbPath(paths));
  } catch {
    // The page says the database could not be read (metricsProblem).
  }
  const logLines = (logs?.sources ?? []).flatMap((s) => s.lines).slice(-40);
  return agentPage({ row: rows[0]!, series, health: health?.agents[0], logLines, csrf, flash, signOut });
}

async function runVerb(options: ServeOptions, id: string, verb: 'start' | 'stop' | 'restart'): Promise<{ ok: boolean; text: string }> {
  const [{ runFleetVerb }, { appendAudit }] = await Promise.all([import('../process/fleet.js'), import('../audit/audit-log.js')]);
  const paths = await requireAgent(options.home, id);
  let outcome: { ok: boolean; text: string };
  try {
    // The CLI's own verb: the agent's operation lock, the runtime's configuration check, the manager.
    const [result] = await runFleetVerb(verb, [paths], { home: options.home, env: options.env, command: `serve: ${verb} from the dashboard` });
    if (!result || result.outcome === 'failed') outcome = { ok: false, text: result?.message ?? `${verb} failed` };
    else if (result.outcome === 'already') outcome = { ok: true, text: `${id}: ${result.message ?? 'unchanged'}` };
    else outcome = { ok: true, text: `${id} ${verb === 'stop' ? 'stopped' : verb === 'start' ? 'started' : 'restarted'}${result.info?.pid ? ` (pid ${result.info.pid})` : ''}` };
  } catch (error) {
    outcome = { ok: false, text: describeError(error) };
  }
  // The same record the CLI's start, stop and restart leave, naming the dashboard as the command.
  await appendAudit(
    options.home,
    { time: new Date().toISOString(), user: userName(), pid: process.pid, command: `serve ${verb}`, args: [id], agents: [id], outcome: outcome.ok ? 'ok' : 'failed', exitCode: outcome.ok ? 0 : 1, ...(outcome.ok ? {} : { error: outcome.text }) },
    [paths],
  );
  return outcome;
}

function userName(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? 'unknown');
  }
}

function agentId(text: string): string | undefined {
  try {
    return parseAgentId(decodeURIComponent(text)).id;
  } catch {
    return undefined;
  }
}

/** Only a path on this server: never an absolute URL or `//host` (an open redirect). */
function safeNext(next: string | null | undefined): string {
  return next && /^\/(?![/\\])/.test(next) ? next : '/';
}

function loadAssets(dir: string): Map<string, { type: string; body: Buffer }> {
  const assets = new Map<string, { type: string; body: Buffer }>();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    throw new AnimusError('ENOTFOUND', `the dashboard's files are missing from ${dir}: run \`npm run build\` (or reinstall animus)`, { cause: error });
  }
  for (const name of names) {
    const type = TYPES[extname(name)];
    if (type) assets.set(name, { type, body: readFileSync(join(dir, name)) });
  }
  return assets;
}

function securityHeaders(response: ServerResponse): void {
  response.setHeader('Content-Security-Policy', "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'");
  response.setHeader('X-Content-Type-Options', 'nosniff');
  response.setHeader('X-Frame-Options', 'DENY');
  response.setHeader('Referrer-Policy', 'same-origin');
  response.setHeader('Cache-Control', 'no-store');
}

function send(response: ServerResponse, status: number, type: string, body: string | Buffer): void {
  response.statusCode = status;
  response.setHeader('Content-Type', type);
  response.end(body);
}

function redirect(response: ServerResponse, location: string): void {
  response.statusCode = 303;
  response.setHeader('Location', location);
  response.end();
}

function readForm(request: IncomingMessage): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new AnimusError('EUSAGE', 'request body too large'));
        request.destroy();
        return;
      }
      chunks.push(chunk);
    });
    request.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    request.on('error', reject);
  });
}

/** One computation at a time: scrapes that arrive while one runs share its answer. */
function coalesce<T>(work: () => Promise<T>): () => Promise<T> {
  let running: Promise<T> | undefined;
  return () => {
    running ??= work().finally(() => {
      running = undefined;
    });
    return running;
  };
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      const reason =
        error.code === 'EADDRINUSE'
          ? `port ${port} on ${host} is in use: pass another --port`
          : error.code === 'EADDRNOTAVAIL'
            ? `${host} is not an address of this machine: pass one of its addresses to --host`
            : error.code === 'EACCES'
              ? `not allowed to listen on port ${port}: use a port above 1023`
              : `cannot listen on ${host}:${port}: ${error.message}`;
      reject(new AnimusError('EIO', reason, { cause: error }));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
