import { AnimusError, EXIT } from '../core/errors.js';
import type { CliContext } from './context.js';

/**
 * Which commands change something, and so leave an audit record (src/audit). One table
 * for the whole CLI: a new command that changes an agent or the home adds its line
 * here. A predicate decides for commands that only sometimes change (adopt --apply).
 */
const CHANGING: Record<string, true | ((options: Record<string, unknown>) => boolean)> = {
  init: true,
  deploy: true,
  remove: true,
  adopt: (options) => options.apply === true,
  start: true,
  stop: true,
  restart: true,
  startup: true,
  'systemd install': true,
  backup: true,
  restore: true,
  update: true,
  rollback: true,
  'settings set': true,
  'env set': true,
  'env unset': true,
  'queue flush': true,
  'queue delete': true,
  'queue retry': true,
  'users activate': true,
  'users deactivate': true,
  'config set': true,
  'config unset': true,
  'telegram login': true,
  'telegram webhook delete': true,
  'approvals approve': true,
  'approvals deny': true,
  'kubernetes push': true,
  send: true,
};

export function isAudited(command: string, options: Record<string, unknown>): boolean {
  const rule = CHANGING[command];
  return rule === true || (typeof rule === 'function' && rule(options));
}

const AGENT_LIKE = /^(agent-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Appends the command's record; a record that cannot be written is a warning, never the command's failure. */
export async function recordAudit(ctx: CliContext, argv: readonly string[], options: Record<string, unknown>, exitCode: number, error?: unknown): Promise<void> {
  try {
    const [{ appendAudit }, { redactArgs }, { parseAgentId }, { agentPaths }, { userInfo }] = await Promise.all([
      import('../audit/audit-log.js'),
      import('../audit/redact-args.js'),
      import('../core/agent-id.js'),
      import('../home/layout.js'),
      import('node:os'),
    ]);
    const { home } = await ctx.resolveHome();
    const named = new Set<string>();
    for (const token of [...argv, typeof options.agent === 'string' ? options.agent : '']) {
      if (AGENT_LIKE.test(token.trim())) named.add(parseAgentId(token.trim()).id);
    }
    if (options.all === true) {
      const { scanAgentFolders } = await import('../instances/registry.js');
      for (const folder of await scanAgentFolders(home).catch(() => [])) if (folder.agent) named.add(folder.agent.id);
    }
    let user = 'unknown';
    try {
      user = userInfo().username;
    } catch {
      // No passwd entry (a container's arbitrary uid): the uid is still in the record's pid owner.
    }
    const code = error === undefined ? exitCode : exitCodeOf(error);
    const problems = await appendAudit(
      home,
      {
        time: new Date().toISOString(),
        user,
        pid: process.pid,
        command: ctx.command,
        args: redactArgs(argv, ctx.env),
        agents: [...named],
        outcome: code === 0 ? 'ok' : code === EXIT.interrupted ? 'interrupted' : 'failed',
        exitCode: code,
        ...(error !== undefined ? { error: redactArgs([error instanceof Error ? error.message : String(error)], ctx.env)[0]!.split('\n')[0] } : {}),
      },
      [...named].map((id) => agentPaths(home, parseAgentId(id))),
    );
    for (const problem of problems) ctx.out.warn(`audit record not written: ${problem}`);
  } catch (failure) {
    ctx.out.warn(`audit record not written: ${failure instanceof Error ? failure.message : String(failure)}`);
  }
}

function exitCodeOf(error: unknown): number {
  if (error instanceof AnimusError) return error.exitCode;
  if ((error as { name?: string })?.name === 'AbortError') return EXIT.interrupted;
  return EXIT.internal;
}
