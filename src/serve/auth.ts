import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { AnimusError } from '../core/errors.js';
import { ensureHomeDir, writeFileAtomic } from '../core/fs.js';
import { homeLayout } from '../home/layout.js';

/**
 * Who may use the dashboard. The rule: bound to 127.0.0.1 or ::1 exactly, only this
 * machine's own users can connect, and reading needs no token; bound to any other
 * address (127.0.0.2 included: a deliberate choice of address is treated as exposed)
 * every request needs the token. Changing state (start, stop, restart) always needs a
 * same-origin request carrying the CSRF token of the page it came from, on loopback
 * too, since any web page a local browser opens can send a POST to 127.0.0.1.
 *
 * The token is made at the first `animus serve`, 64 hex characters in
 * `<home>/.animus/serve-token` (0600); it is never printed or put in a page. It is
 * sent as `Authorization: Bearer <token>` or typed once into /login, which sets an
 * HttpOnly, SameSite=Strict cookie holding a value derived from it (not the token).
 */
export const TOKEN_FILE = 'serve-token';
export const SESSION_COOKIE = 'animus_session';

export function tokenPath(home: string): string {
  return join(homeLayout(home).stateDir, TOKEN_FILE);
}

export function isLoopbackBind(host: string): boolean {
  return host === '127.0.0.1' || host === '::1';
}

/** The token, made (0600) on first use. */
export async function loadOrCreateToken(home: string): Promise<string> {
  const path = tokenPath(home);
  try {
    const text = (await readFile(path, 'utf8')).trim();
    if (/^[0-9a-f]{64}$/.test(text)) return text;
    throw new AnimusError('EBADSETTINGS', `${path} does not hold a dashboard token: delete it and start \`animus serve\` again to make a new one`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  // Not chmod'ed 0700 when `systemd install --run-as` opened it to the agents' group (0750).
  await ensureHomeDir(homeLayout(home).stateDir);
  const token = randomBytes(32).toString('hex');
  await writeFileAtomic(path, `${token}\n`, 0o600);
  return token;
}

export class Credentials {
  readonly session: string;
  readonly csrf: string;

  constructor(private readonly token: string) {
    this.session = derive(token, 'session');
    this.csrf = derive(token, 'csrf');
  }

  /** Whether the request carries the token (bearer) or the session cookie. */
  authenticated(request: IncomingMessage): boolean {
    const header = request.headers.authorization ?? '';
    const bearer = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
    if (bearer !== undefined) return same(bearer, this.token);
    const cookie = readCookie(request, SESSION_COOKIE);
    return cookie !== undefined && same(cookie, this.session);
  }

  checkToken(candidate: string): boolean {
    return same(candidate.trim(), this.token);
  }

  checkCsrf(candidate: string | undefined): boolean {
    return candidate !== undefined && same(candidate, this.csrf);
  }
}

/**
 * A state-changing request must come from this server's own pages: its Origin (or,
 * without one, its Referer) must name the Host it was sent to. Browsers always send
 * Origin on a cross-site POST, so a foreign page is refused here before the CSRF token.
 */
export function sameOrigin(request: IncomingMessage): boolean {
  const host = request.headers.host;
  const source = request.headers.origin ?? request.headers.referer;
  if (!host || !source) return false;
  try {
    return new URL(source).host === host;
  } catch {
    return false;
  }
}

/**
 * On loopback, the Host header must name a loopback address too: a page on another
 * site whose name was rebound to 127.0.0.1 (DNS rebinding) sends its own name.
 */
export function loopbackHostHeader(request: IncomingMessage): boolean {
  const host = request.headers.host ?? '';
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d+$/, '');
  return name === '127.0.0.1' || name === 'localhost' || name === '[::1]';
}

export function readCookie(request: IncomingMessage, name: string): string | undefined {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return decodeURIComponent(rest.join('='));
  }
  return undefined;
}

function derive(token: string, purpose: string): string {
  return createHmac('sha256', token).update(`animus dashboard ${purpose}`).digest('hex');
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
