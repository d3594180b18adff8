import { loadOnUse } from '../core/load-package.js';
import type { AgentMetrics } from './types.js';
import { WINDOWS } from './types.js';

const promClient = loadOnUse<typeof import('prom-client')>('prom-client');

/** The content type of the text exposition format, for `GET /metrics`. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels = Record<string, string>;
type Family = { kind: 'gauge' | 'counter'; help: string; labels?: string[]; samples: (agent: AgentMetrics, add: (value: number | null | undefined, labels?: Labels) => void) => void };

/**
 * Every family animus exports. Totals since the agent's first message are counters
 * (Prometheus takes rates and windows from them); latency quantiles are gauges per
 * window, since a quantile cannot be summed back. A number the agent's database does
 * not keep (a Broca-made file) has no sample at all, rather than a zero.
 */
const FAMILIES: Record<string, Family> = {
  animus_agent_up: {
    kind: 'gauge',
    help: 'Whether the agent process is online (1) or not (0).',
    samples: (a, add) => add(a.process.state === 'online' ? 1 : 0),
  },
  animus_agent_messages_received_total: {
    kind: 'counter',
    help: 'Messages the agent received (stored in its database).',
    samples: (a, add) => add(a.database?.windows.all.messagesIn),
  },
  animus_agent_messages_replied_total: {
    kind: 'counter',
    help: 'Messages the agent answered.',
    samples: (a, add) => add(a.database?.windows.all.messagesOut),
  },
  animus_agent_reply_latency_seconds: {
    kind: 'gauge',
    help: 'Reply latency quantiles (nearest rank) over the replies of each window.',
    labels: ['window', 'quantile'],
    samples: (a, add) => {
      for (const window of WINDOWS) {
        const latency = a.database?.windows[window].latencyMs;
        if (!latency) continue;
        for (const [quantile, value] of [['0.5', latency.p50], ['0.95', latency.p95], ['0.99', latency.p99]] as const) {
          add(value === null ? null : value / 1000, { window, quantile });
        }
      }
    },
  },
  animus_agent_tokens_total: {
    kind: 'counter',
    help: 'Tokens the agent used, by type (prompt, completion, total).',
    labels: ['type'],
    samples: (a, add) => {
      const tokens = a.database?.windows.all.tokens;
      if (!tokens) return;
      for (const type of ['prompt', 'completion', 'total'] as const) add(tokens[type], { type });
    },
  },
  animus_agent_requests_total: {
    kind: 'counter',
    help: 'Agent requests sent to Letta (each attempt counts).',
    samples: (a, add) => add(a.database?.windows.all.requests?.attempts),
  },
  animus_agent_request_retries_total: {
    kind: 'counter',
    help: 'Agent requests that failed and were scheduled again.',
    samples: (a, add) => add(a.database?.windows.all.requests?.retries),
  },
  animus_agent_request_failures_total: {
    kind: 'counter',
    help: 'Agent requests that did not reply, by error kind (timeout, connection, http_4xx, http_5xx, rate_limited, stop_reason, ...).',
    labels: ['kind'],
    samples: (a, add) => {
      for (const [kind, n] of Object.entries(a.database?.windows.all.requests?.failuresByKind ?? {})) add(n, { kind });
    },
  },
  animus_agent_stop_reasons_total: {
    kind: 'counter',
    help: 'Letta stop reasons other than end_turn, by reason.',
    labels: ['reason'],
    samples: (a, add) => {
      for (const [reason, n] of Object.entries(a.database?.windows.all.requests?.stopReasons ?? {})) add(n, { reason });
    },
  },
  animus_agent_delivery_failures_total: {
    kind: 'counter',
    help: 'Replies that could not be delivered to the chat.',
    samples: (a, add) => add(a.database?.windows.all.deliveryFailures),
  },
  animus_agent_queue_items: {
    kind: 'gauge',
    help: 'Queue items by status (retrying: pending items that failed before).',
    labels: ['status'],
    samples: (a, add) => {
      const queue = a.database?.queue;
      if (!queue) return;
      for (const status of ['pending', 'processing', 'failed', 'retrying'] as const) add(queue[status], { status });
    },
  },
  animus_agent_queue_oldest_pending_age_seconds: {
    kind: 'gauge',
    help: 'Age of the oldest pending queue item (no sample when nothing is pending).',
    samples: (a, add) => add(a.database?.queue.oldestPendingAgeS),
  },
  animus_agent_process_restarts_total: {
    kind: 'counter',
    help: 'Restarts of the agent process counted by its process manager.',
    samples: (a, add) => add(a.process.restarts),
  },
  animus_agent_process_crash_restarts_total: {
    kind: 'counter',
    help: 'Restarts animus did not ask for (crashes, memory limit).',
    samples: (a, add) => add(a.process.crashRestarts),
  },
  animus_agent_process_resident_memory_bytes: {
    kind: 'gauge',
    help: 'Resident memory of the agent process.',
    samples: (a, add) => add(a.process.rssBytes),
  },
  animus_agent_process_cpu_ratio: {
    kind: 'gauge',
    help: 'CPU use of the agent process (1 = one core), as its process manager samples it.',
    samples: (a, add) => add(a.process.cpuPercent === undefined ? undefined : a.process.cpuPercent / 100),
  },
  animus_agent_process_uptime_seconds: {
    kind: 'gauge',
    help: 'Seconds since the agent process started.',
    samples: (a, add) => add(a.process.uptimeMs === undefined ? undefined : a.process.uptimeMs / 1000),
  },
};

/**
 * The fleet in the Prometheus text exposition format, written by prom-client: one
 * family per metric, each sample labelled with the agent's id (`agent`) and `name`.
 */
export async function renderPrometheus(agents: AgentMetrics[], scrape: { durationMs: number }): Promise<string> {
  const client = promClient();
  const registry = new client.Registry();
  for (const [name, family] of Object.entries(FAMILIES)) {
    const labelNames = ['agent', 'name', ...(family.labels ?? [])];
    const metric = family.kind === 'gauge' ? new client.Gauge({ name, help: family.help, labelNames, registers: [registry] }) : new client.Counter({ name, help: family.help, labelNames, registers: [registry] });
    for (const agent of agents) {
      family.samples(agent, (value, labels) => {
        if (value === null || value === undefined || !Number.isFinite(value)) return;
        const all = { agent: agent.id, name: agent.name, ...labels };
        if (metric instanceof client.Gauge) metric.set(all, value);
        else metric.inc(all, value);
      });
    }
  }
  new client.Gauge({ name: 'animus_agents', help: 'Agent folders in the home.', registers: [registry] }).set(agents.length);
  new client.Gauge({ name: 'animus_scrape_duration_seconds', help: 'Time animus took to read every agent for this output.', registers: [registry] }).set(scrape.durationMs / 1000);
  return registry.metrics();
}
