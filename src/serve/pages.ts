import type { AgentHealth } from '../health/types.js';
import type { HourlySeries } from '../metrics/series.js';
import type { StatusWithMetrics } from '../metrics/status.js';
import type { WindowName } from '../metrics/types.js';
import { formatBytes, formatCount, formatDuration, formatLatency } from '../cli/format.js';
import { failures24h, queueDepth, shortIds } from '../cli/status-table.js';

/**
 * The dashboard's pages, rendered on the server as plain HTML; the only script is the
 * bundled chart code (assets/app.js). Every value from an agent's files is escaped.
 * Secrets never reach here: metrics hold none, logs come redacted, health's messages
 * name files and modes, never values.
 */

export function escapeHtml(text: unknown): string {
  return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const ABSENT = '<span class="absent" title="this agent\'s database does not keep it">–</span>';

/** Set on pages of a dashboard that needs the token (a non-loopback address): the header gets a sign-out button. */
export interface SignOut {
  csrf: string;
}

function layout(title: string, body: string, options: { refreshS?: number; signOut?: SignOut } = {}): string {
  const signOut = options.signOut
    ? `<form class="signout" method="post" action="/logout"><input type="hidden" name="csrf" value="${escapeHtml(options.signOut.csrf)}"><button type="submit">sign out</button></form>`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
${options.refreshS ? `<meta http-equiv="refresh" content="${options.refreshS}">` : ''}
<title>${escapeHtml(title)} · animus</title>
<link rel="stylesheet" href="/assets/uPlot.min.css"><link rel="stylesheet" href="/assets/style.css">
</head><body>
<header><a class="brand" href="/">animus</a><span class="home-title">${escapeHtml(title)}</span>${signOut}</header>
<main>${body}</main>
<script src="/assets/app.js" defer></script>
</body></html>`;
}

function num(value: number | null | undefined, format: (n: number) => string = formatCount): string {
  return value === null || value === undefined ? ABSENT : escapeHtml(format(value));
}

function stateBadge(state: string): string {
  const tone = state === 'online' ? 'ok' : state === 'errored' || state === 'unknown' ? 'bad' : state === 'starting' || state === 'stopping' ? 'warn' : 'idle';
  return `<span class="state ${tone}">${escapeHtml(state)}</span>`;
}

export function fleetPage(home: string, rows: StatusWithMetrics[], signOut?: SignOut): string {
  const short = shortIds(rows.map((r) => r.id));
  const sum = (pick: (r: StatusWithMetrics) => number | null | undefined) => rows.reduce((n, r) => n + (pick(r) ?? 0), 0);
  const online = rows.filter((r) => r.state === 'online').length;
  const cards = [
    ['agents online', `${online} / ${rows.length}`],
    ['messages, 24 h', formatCount(sum((r) => r.metrics?.windows['24h'].messagesIn))],
    ['failures, 24 h', formatCount(sum(failures24h))],
    ['queued', formatCount(sum(queueDepth))],
    ['tokens, 24 h', formatCount(sum((r) => r.metrics?.windows['24h'].tokens?.total))],
  ]
    .map(([label, value]) => `<div class="card"><div class="value">${escapeHtml(value)}</div><div class="label">${escapeHtml(label)}</div></div>`)
    .join('');
  const body = rows
    .map((r) => {
      const w = r.metrics?.windows['24h'];
      const failures = failures24h(r);
      return `<tr data-agent="${escapeHtml(r.id)}">
<td><a href="/agents/${escapeHtml(r.id)}"><code>${escapeHtml(short.get(r.id))}</code></a></td><td>${escapeHtml(r.name)}</td>
<td>${stateBadge(r.state)}</td><td class="n">${r.uptimeMs === undefined ? '' : escapeHtml(formatDuration(r.uptimeMs))}</td>
<td class="n">${w?.latencyMs ? num(w.latencyMs.p50, formatLatency) : ABSENT}</td><td class="n">${w?.latencyMs ? num(w.latencyMs.p95, formatLatency) : ABSENT}</td>
<td class="n">${num(w?.messagesIn)}</td><td class="n">${num(w?.messagesOut)}</td>
<td class="n${failures ? ' bad' : ''}">${num(failures)}</td><td class="n">${num(queueDepth(r))}</td>
<td class="n">${num(w?.tokens?.total)}</td><td class="n">${r.memoryBytes === undefined ? '' : escapeHtml(formatBytes(r.memoryBytes))}</td>
<td class="n">${r.cpuPercent === undefined ? '' : `${escapeHtml(r.cpuPercent)}%`}</td></tr>`;
    })
    .join('\n');
  const table = rows.length
    ? `<table class="fleet"><thead><tr><th>agent</th><th>name</th><th>state</th><th>uptime</th><th>p50</th><th>p95</th><th>in 24h</th><th>out 24h</th><th>failures 24h</th><th>queue</th><th>tokens 24h</th><th>memory</th><th>CPU</th></tr></thead><tbody>${body}</tbody></table>`
    : `<p class="empty">No agents in ${escapeHtml(home)}: deploy one with <code>animus deploy &lt;id&gt;</code>.</p>`;
  return layout('fleet', `<section class="cards">${cards}</section>${table}<p class="foot">${escapeHtml(home)} · refreshed every 15 s · latency and traffic over the last 24 h</p>`, { refreshS: 15, signOut });
}

export interface AgentPageData {
  row: StatusWithMetrics;
  series: HourlySeries | null;
  health: AgentHealth | undefined;
  logLines: string[];
  csrf: string;
  flash?: { ok: boolean; text: string };
  signOut?: SignOut;
}

export function agentPage(data: AgentPageData): string {
  const { row } = data;
  const windows: Array<[WindowName, string]> = [['1h', 'last hour'], ['24h', 'last 24 h'], ['all', 'all time']];
  const numbers = windows
    .map(([name, label]) => {
      const w = row.metrics?.windows[name];
      return `<tr><th>${label}</th><td class="n">${num(w?.messagesIn)}</td><td class="n">${num(w?.messagesOut)}</td>
<td class="n">${w?.latencyMs ? num(w.latencyMs.p50, formatLatency) : ABSENT}</td><td class="n">${w?.latencyMs ? num(w.latencyMs.p95, formatLatency) : ABSENT}</td><td class="n">${w?.latencyMs ? num(w.latencyMs.p99, formatLatency) : ABSENT}</td>
<td class="n">${num(w?.requests?.failures)}</td><td class="n">${num(w?.requests?.retries)}</td><td class="n">${num(w?.deliveryFailures)}</td><td class="n">${num(w?.tokens?.total)}</td></tr>`;
    })
    .join('');
  const kinds = Object.entries(row.metrics?.windows['24h'].requests?.failuresByKind ?? {})
    .map(([kind, n]) => `<li><code>${escapeHtml(kind)}</code> ${escapeHtml(n)}</li>`)
    .join('');
  const queue = row.metrics?.queue;
  const buttons = (['start', 'stop', 'restart'] as const)
    .map((verb) => `<form method="post" action="/agents/${escapeHtml(row.id)}/${verb}"><input type="hidden" name="csrf" value="${escapeHtml(data.csrf)}"><button type="submit" name="verb" value="${verb}" class="${verb}">${verb}</button></form>`)
    .join('');
  const checks = data.health
    ? `<table class="checks">${data.health.checks.map((c) => `<tr><td><span class="check ${escapeHtml(c.status)}">${escapeHtml(c.status)}</span></td><th>${escapeHtml(c.name)}</th><td>${escapeHtml(c.message)}</td></tr>`).join('')}</table>`
    : '<p class="empty">health could not run</p>';
  const charts = data.series
    ? `<section class="charts">
<figure><figcaption>reply latency (s), per hour</figcaption><div class="chart" id="chart-latency"></div></figure>
<figure><figcaption>messages in / out, per hour</figcaption><div class="chart" id="chart-traffic"></div></figure>
<figure><figcaption>tokens, per hour</figcaption><div class="chart" id="chart-tokens"></div></figure>
</section><script type="application/json" id="series">${JSON.stringify(data.series).replace(/</g, '\\u003c')}</script>`
    : '<p class="empty">no charts: the database could not be read</p>';
  const flash = data.flash ? `<p class="flash ${data.flash.ok ? 'ok' : 'bad'}">${escapeHtml(data.flash.text)}</p>` : '';
  const body = `${flash}
<section class="agent-head"><h1>${escapeHtml(row.name || row.id)}</h1><code class="id">${escapeHtml(row.id)}</code> ${stateBadge(row.state)}
<span class="facts">${escapeHtml(row.manager ?? '')}${row.pid ? ` · pid ${escapeHtml(row.pid)}` : ''}${row.uptimeMs !== undefined ? ` · up ${escapeHtml(formatDuration(row.uptimeMs))}` : ''}${row.memoryBytes !== undefined ? ` · ${escapeHtml(formatBytes(row.memoryBytes))}` : ''}${row.cpuPercent !== undefined ? ` · CPU ${escapeHtml(row.cpuPercent)}%` : ''} · restarts ${num(row.restarts)} (crashes ${num(row.crashRestarts)})</span>
<div class="actions">${buttons}</div></section>
${charts}
<section><h2>numbers</h2><table class="numbers"><thead><tr><th></th><th>in</th><th>out</th><th>p50</th><th>p95</th><th>p99</th><th>failures</th><th>retries</th><th>undelivered</th><th>tokens</th></tr></thead><tbody>${numbers}</tbody></table>
<p>queue: ${num(queue?.pending)} pending (${num(queue?.retrying)} retrying), ${num(queue?.processing)} processing, ${num(queue?.failed)} failed${queue?.oldestPendingAgeS != null ? `, oldest pending ${escapeHtml(formatDuration(queue.oldestPendingAgeS * 1000))}` : ''}</p>
${kinds ? `<p>failures in the last 24 h by kind:</p><ul class="kinds">${kinds}</ul>` : ''}${row.metricsProblem ? `<p class="flash bad">${escapeHtml(row.metricsProblem)}</p>` : ''}</section>
<section><h2>health</h2>${checks}</section>
<section><h2>recent log lines</h2><pre class="log">${data.logLines.map(escapeHtml).join('\n') || 'no log lines yet'}</pre></section>`;
  return layout(row.name || row.id, body, { signOut: data.signOut });
}

export function loginPage(options: { failed: boolean; next: string }): string {
  return layout(
    'sign in',
    `<form class="login" method="post" action="/login"><p>This dashboard is bound to an address other machines can reach: type the token from <code>.animus/serve-token</code> in the animus home to sign in.</p>
${options.failed ? '<p class="flash bad">That is not the token.</p>' : ''}<input type="hidden" name="next" value="${escapeHtml(options.next)}">
<label>token <input type="password" name="token" autocomplete="current-password" autofocus></label><button type="submit">sign in</button></form>`,
  );
}

export function messagePage(title: string, text: string): string {
  return layout(title, `<p class="flash bad">${escapeHtml(text)}</p><p><a href="/">back to the fleet</a></p>`);
}
